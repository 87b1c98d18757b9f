"""Fill the async comment counter from the comments service (COMMENT_COUNTS=async).

    python manage.py comment_counts_rebuild [--batch-size 100]

For a database whose comments were made before the consumer counted them
(posts imported from the monolith, a switch from sync to async): walks every
post in id order, one batch call to the comments service per page
(``POST /internal/comment-counts/``), and sets the counters of that page in
one transaction. Idempotent (absolute values): run it again after a failure.

Only right while no comment event is in flight: pause comment writes and let
``bus_consume --service posts`` drain ``posts.blog-events`` first; the events
of comments made afterwards are counted on top by the worker.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from blogweb.exceptions import DependencyUnavailable
from posts import comment_counts
from posts.models import Post

MAX_BATCH = 100  # what the comments service's batch endpoint takes in one call


class Command(BaseCommand):
    help = "Set the async comment counters from the comments service's counts (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=MAX_BATCH)

    def handle(self, *args, **options):
        batch_size = options["batch_size"]
        if not 1 <= batch_size <= MAX_BATCH:
            raise CommandError(f"--batch-size must be in 1..{MAX_BATCH}")
        posts = comments = 0
        last = None
        while True:
            page = Post.objects.order_by("id").values_list("id", flat=True)
            if last is not None:
                page = page.filter(id__gt=last)
            ids = list(page[:batch_size])
            if not ids:
                break
            try:
                comments += comment_counts.rebuild(ids)
            except DependencyUnavailable as exc:
                raise CommandError(
                    f"the comments service did not answer after {posts} posts; run it again"
                ) from exc
            posts += len(ids)
            last = ids[-1]
            if options["verbosity"] > 1:
                self.stdout.write(f"{posts} posts, {comments} comments")
        self.stdout.write(f"counted {comments} comments on {posts} posts")
