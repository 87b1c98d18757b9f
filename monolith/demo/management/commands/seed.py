"""Load a realistic, reproducible demo data set of posts and comments.

    python manage.py seed                       # 200 posts, 2,000 comments
    python manage.py seed --posts 1000 --comments 10000 --reset --seed 7

Everything that decides the data set (ids, text, which post a comment lands
on, every timestamp's distance from "now") comes from ``--seed``, so
``--reset`` with the same seed gives the same rows. Timestamps are anchored to
the current minute, so two runs differ only by where that anchor sits.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError, transaction
from faker import Faker
from tqdm import tqdm

# Tooling, not business logic: a bulk loader writes both apps' tables directly.
from monolith.comments.models import Comment
from monolith.posts.models import Post

DAY_MS = 24 * 60 * 60 * 1000
HISTORY_MS = 365 * DAY_MS
SHARE_OF_POSTS_WITHOUT_COMMENTS = 0.15
# Pareto weights make a few posts popular; the cap keeps one post from
# swallowing a small data set.
POPULARITY_SHAPE = 1.3
POPULARITY_CAP = 40.0
BODY_MIN_CHARS, BODY_MAX_CHARS = 300, 2000

TOPICS = (
    "Django",
    "PostgreSQL",
    "microservices",
    "event sourcing",
    "caching",
    "Kubernetes",
    "testing",
    "code review",
    "observability",
    "message brokers",
    "MongoDB",
    "pagination",
    "refactoring",
    "on-call",
    "API design",
    "database migrations",
    "feature flags",
    "remote work",
    "technical debt",
    "pair programming",
    "sourdough",
    "photography",
    "cycling",
    "travel",
)
TITLE_TEMPLATES = (
    "{Topic}: {catch_phrase}",
    "How we {bs} with {topic}",
    "{n} things I learned about {topic}",
    "A gentle introduction to {topic}",
    "What {topic} taught me about {topic2}",
    "{Topic} in practice: {bs}",
    "Notes from a week of {topic}",
    "Why I stopped worrying about {topic}",
    "{catch_phrase}",
    "{sentence}",
)
COMMENT_OPENERS = (
    "Great post!",
    "Thanks for writing this.",
    "Interesting.",
    "I disagree.",
    "This matches my experience.",
    "Bookmarked.",
    "Quick question:",
    "Nice write-up.",
    "Hmm.",
    "+1",
)


@dataclass(frozen=True, slots=True)
class SeedResult:
    posts: int
    comments: int
    deleted_posts: int
    deleted_comments: int
    seconds: float


def deterministic_uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def non_negative_int(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {number}")
    return number


def positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {number}")
    return number


class Command(BaseCommand):
    help = "Load a demo data set of posts and comments (deterministic for a given --seed)."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--posts", type=non_negative_int, default=200, help="number of posts (default 200)"
        )
        parser.add_argument(
            "--comments",
            type=non_negative_int,
            default=2000,
            help="number of comments (default 2000)",
        )
        parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
        parser.add_argument(
            "--reset", action="store_true", help="delete all posts and comments first"
        )
        parser.add_argument("--quiet", action="store_true", help="no progress bar")
        parser.add_argument(
            "--batch-size", type=positive_int, default=1000, help="rows per INSERT (default 1000)"
        )

    def handle(self, *args, **options) -> None:
        posts, comments = options["posts"], options["comments"]
        if comments and not posts:
            raise CommandError("--comments needs at least one post (--posts >= 1)")

        show_progress = not options["quiet"] and options["verbosity"] > 0 and sys.stderr.isatty()
        with tqdm(
            total=posts + comments,
            unit="row",
            desc="seeding",
            file=sys.stderr,
            disable=not show_progress,
        ) as bar:
            try:
                result = seed_demo_data(
                    posts=posts,
                    comments=comments,
                    seed=options["seed"],
                    reset=options["reset"],
                    batch_size=options["batch_size"],
                    on_progress=bar.update,
                )
            except IntegrityError as exc:
                raise CommandError(
                    "rows with the ids of this seed already exist; "
                    "run with --reset, or pick another --seed "
                    f"({str(exc).splitlines()[0]})"
                ) from exc

        if options["verbosity"] > 0:
            deleted = (
                f" after deleting {result.deleted_posts:,} posts"
                f" and {result.deleted_comments:,} comments"
                if options["reset"]
                else ""
            )
            self.stdout.write(
                self.style.SUCCESS(
                    f"Seeded {result.posts:,} posts and {result.comments:,} comments "
                    f"(seed {options['seed']}) in {result.seconds:.1f} s{deleted}."
                )
            )


def seed_demo_data(
    *,
    posts: int,
    comments: int,
    seed: int,
    reset: bool = False,
    batch_size: int = 1000,
    on_progress=lambda rows: None,
) -> SeedResult:
    started = time.monotonic()
    # Posts and comments draw from separate streams, so changing --comments
    # leaves the posts of a seed as they were.
    post_rng = random.Random(f"{seed}:posts")
    comment_rng = random.Random(f"{seed}:comments")
    faker = Faker("en_US")
    anchor = datetime.now(UTC).replace(second=0, microsecond=0)

    # Offsets are whole milliseconds before the anchor: never in the future,
    # and already at the millisecond precision the API renders.
    post_ids = [deterministic_uuid(post_rng) for _ in range(posts)]
    post_offsets_ms = sorted((post_rng.randrange(HISTORY_MS) for _ in range(posts)), reverse=True)
    popularity = [
        0.0
        if post_rng.random() < SHARE_OF_POSTS_WITHOUT_COMMENTS
        else min(post_rng.paretovariate(POPULARITY_SHAPE), POPULARITY_CAP)
        for _ in range(posts)
    ]
    if posts and not any(popularity):
        popularity[0] = 1.0

    deleted_posts = deleted_comments = 0
    with transaction.atomic(), _explicit_created_at(Post, Comment):
        if reset:
            # Comments first: a plain DELETE, instead of Django collecting
            # every comment of every post in Python for the cascade.
            deleted_comments, _ = Comment.objects.all().delete()
            deleted_posts, _ = Post.objects.all().delete()

        faker.random = post_rng
        for start in range(0, posts, batch_size):
            stop = min(start + batch_size, posts)
            Post.objects.bulk_create(
                [
                    Post(
                        id=post_ids[i],
                        title=_title(faker, post_rng),
                        body=_body(faker, post_rng),
                        created_at=anchor - timedelta(milliseconds=post_offsets_ms[i]),
                    )
                    for i in range(start, stop)
                ]
            )
            on_progress(stop - start)

        faker.random = comment_rng
        targets = (
            comment_rng.choices(range(posts), weights=popularity, k=comments) if comments else []
        )
        for start in range(0, comments, batch_size):
            batch = []
            for target in targets[start : start + batch_size]:
                post_offset = post_offsets_ms[target]
                # Cubing a uniform draw bunches comments soon after the post,
                # with a long tail up to the anchor.
                comment_offset = post_offset - int(post_offset * comment_rng.random() ** 3)
                batch.append(
                    Comment(
                        id=deterministic_uuid(comment_rng),
                        post_id=post_ids[target],
                        body=_comment_body(faker, comment_rng),
                        created_at=anchor - timedelta(milliseconds=comment_offset),
                    )
                )
            Comment.objects.bulk_create(batch)
            on_progress(len(batch))

    return SeedResult(
        posts=posts,
        comments=comments,
        deleted_posts=deleted_posts,
        deleted_comments=deleted_comments,
        seconds=time.monotonic() - started,
    )


@contextmanager
def _explicit_created_at(*models) -> Iterator[None]:
    """Keep the seeded created_at even if the field is auto_now/auto_now_add.

    bulk_create runs the fields' pre_save, which would stamp every row with
    the current time.
    """
    fields = [model._meta.get_field("created_at") for model in models]
    saved = [
        (field, field.auto_now, field.auto_now_add)
        for field in fields
        if hasattr(field, "auto_now")
    ]
    for field, _, _ in saved:
        field.auto_now = field.auto_now_add = False
    try:
        yield
    finally:
        for field, auto_now, auto_now_add in saved:
            field.auto_now, field.auto_now_add = auto_now, auto_now_add


def _title(faker: Faker, rng: random.Random) -> str:
    topic, topic2 = rng.sample(TOPICS, 2)
    title = rng.choice(TITLE_TEMPLATES).format(
        topic=topic,
        Topic=topic[0].upper() + topic[1:],
        topic2=topic2,
        n=rng.choice((3, 5, 7, 10, 12)),
        bs=faker.bs(),
        catch_phrase=faker.catch_phrase(),
        sentence=faker.sentence(nb_words=7).rstrip("."),
    )
    return title[:200]


def _body(faker: Faker, rng: random.Random) -> str:
    # Mostly short-to-medium posts, some long ones.
    target = int(BODY_MIN_CHARS + (BODY_MAX_CHARS - BODY_MIN_CHARS) * rng.random() ** 1.5)
    paragraphs: list[str] = []
    length = 0
    while length < target:
        paragraph = faker.paragraph(nb_sentences=rng.randint(3, 8))
        paragraphs.append(paragraph)
        length += len(paragraph) + 2
    body = "\n\n".join(paragraphs)
    if len(body) > BODY_MAX_CHARS:
        body = body[: BODY_MAX_CHARS - 1].rsplit(" ", 1)[0].rstrip(".,;:") + "."
    return body


def _comment_body(faker: Faker, rng: random.Random) -> str:
    sentences = faker.sentences(nb=rng.choices((1, 2, 3, 4), weights=(4, 4, 2, 1))[0])
    if rng.random() < 0.3:
        sentences.insert(0, rng.choice(COMMENT_OPENERS))
    return " ".join(sentences)
