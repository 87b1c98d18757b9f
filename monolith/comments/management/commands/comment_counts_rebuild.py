"""Stage 3: fill the comment counters from the comments service.

The counters are kept from comment events from the moment stage 3 starts;
comments that were there before (moved by `make migrate-stage 2`) never had an
event. This asks the comments service for every post's count, a page of 100
posts per call, and writes the counters. Run it once when switching to
COMMENT_COUNTS=async, while no comment is being written.
"""

from django.core.management.base import BaseCommand
from django.db import transaction
from tqdm import tqdm

from monolith.comments import remote
from monolith.comments.models import CommentCount
from monolith.posts import api as posts_api

BATCH = 100


class Command(BaseCommand):
    help = "Fill the stage-3 comment counters from the comments service."

    def handle(self, *args, **options):
        post_ids = posts_api.post_ids()
        written = 0
        with tqdm(total=len(post_ids), unit="post", disable=options["verbosity"] < 1) as bar:
            for start in range(0, len(post_ids), BATCH):
                batch = post_ids[start : start + BATCH]
                counts = remote.comment_counts(post_ids=batch)
                with transaction.atomic():
                    CommentCount.objects.filter(post_id__in=batch).delete()
                    CommentCount.objects.bulk_create(
                        CommentCount(post_id=post_id, count=n) for post_id, n in counts.items() if n
                    )
                written += sum(1 for n in counts.values() if n)
                bar.update(len(batch))
        self.stdout.write(f"Counters written for {written} of {len(post_ids)} posts.")
