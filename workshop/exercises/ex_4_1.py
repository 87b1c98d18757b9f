"""Exercise 4.1: a replica and a counter kept from events, on both sides."""

from workshop.blank import Function, Replace
from workshop.catalogue import Exercise, Lesson, Suite

COMMENTS = ("-c", "services/comments/pyproject.toml", "--rootdir", "services/comments")
POSTS = ("-c", "services/posts/pyproject.toml")
REPOSITORY = "services/comments/comments/repository.py"
COMMENT_EVENTS = "services/comments/comments/events.py"
POST_EVENTS = "services/posts/posts/events.py"

EXERCISE = Exercise(
    id="4.1",
    stage=4,
    title="Replica and counters from events",
    goal=(
        "Write both consumers of stage 4's events. In the posts service, posts/events.py: "
        "on_comment_created and on_comment_deleted keep the comment counter "
        "(posts.models.CommentCount) that comment_count is read from, with no call to the "
        "comments service. In the comments service, comments/repository.py: "
        "replica_post_add (a post recorded as live unless the replica knows it already) "
        "and replica_post_tombstone (a deletion that stays), and comments/events.py: "
        "on_post_deleted, which applies post.deleted to the replica of posts and to the "
        "post's comments."
    ),
    why=(
        "Each service now owns its data, and each needs a little of the other's: the "
        "posts service a number of comments per post, the comments service whether a post "
        "exists. Asking the other service on every request couples their uptime (a page "
        "of posts fails with the comments service). Kept locally from events, the copy "
        "serves while the other side is down, but it has to survive what a broker does: "
        "the same event twice, events out of order, a delete racing a write. A counter "
        "behind an inbox may add; a replica in a store without transactions must make "
        "every write come out the same whatever the order, and a deletion must win."
    ),
    patterns=(
        "event-carried state transfer (a local replica)",
        "a read model kept from events (a counter)",
        "idempotent upsert (no inbox)",
        "tombstones: a deletion always wins",
        "out-of-order delivery",
    ),
    minutes=50,
    blanks=(
        Function(
            POST_EVENTS,
            "on_comment_created",
            "+1 on the post's comment counter, only for a post that exists",
            doc="+1 on the post's counter; nothing for a post that is not (or no longer) here.",
        ),
        Function(
            POST_EVENTS,
            "on_comment_deleted",
            "-1 on the post's comment counter, never below 0",
        ),
        Function(
            REPOSITORY,
            "replica_post_add",
            "record a live post unless the replica knows it already (a tombstone wins)",
            doc=(
                "Records a live post unless the replica knows it already (a tombstone\n"
                "    always wins; a duplicate changes nothing). Returns what the replica\n"
                "    holds afterwards."
            ),
        ),
        Function(
            REPOSITORY,
            "replica_post_tombstone",
            "mark the post deleted for good, even one the replica has not seen yet",
            doc=(
                "Marks the post deleted, forever, even before its post.created arrives.\n"
                "    ``deleted_at`` never moves back: a replay or an older deletion changes\n"
                "    nothing."
            ),
        ),
        Function(
            COMMENT_EVENTS,
            "on_post_deleted",
            "tombstone the post in the replica, then remove its comments",
        ),
        # The module's docstring names the MongoDB operators of the solution.
        Replace(
            COMMENT_EVENTS,
            "- post.created: ``$setOnInsert`` upsert keyed by the post id; a tombstone\n"
            "  always wins, so a late post.created after post.deleted does nothing.\n"
            "- post.deleted: tombstone (upsert, ``$max`` on deleted_at), then\n"
            "  ``delete_many`` of the post's comments. Both idempotent; if the handler dies\n"
            "  between them, the redelivery finishes the job.\n",
            "- post.created: the post recorded as live unless the replica knows it\n"
            "  already; a tombstone always wins, so a late post.created after\n"
            "  post.deleted does nothing.\n"
            "- post.deleted: a tombstone (even before the post.created), then the post's\n"
            "  comments removed. Both idempotent; if the handler dies between them, the\n"
            "  redelivery finishes the job.\n",
        ),
        # So does the service's README (its table of the post events).
        Replace(
            "services/comments/README.md",
            "| `post.created` `{id, title, created_at}` | `update_one({_id}, {$setOnInsert: "
            "{deleted: false, created_at}}, upsert)`: a duplicate changes nothing",
            "| `post.created` `{id, title, created_at}` | the post recorded live with its "
            "`created_at` unless the replica knows it: a duplicate changes nothing",
        ),
        Replace(
            "services/comments/README.md",
            "| `post.deleted` `{id}` | tombstone `update_one({_id}, {$set: {deleted: true}, "
            "$max: {deleted_at}}, upsert)` (a",
            "| `post.deleted` `{id}` | a tombstone, `deleted: true` with a `deleted_at` that "
            "never moves back (a",
        ),
    ),
    files_hint=(
        f"{POST_EVENTS}: on_comment_created(), on_comment_deleted() (the counter: "
        "posts/models.py CommentCount; read by posts/comment_counts.py); "
        f"{REPOSITORY}: replica_post_add(), replica_post_tombstone() (collection "
        f"posts_replica); {COMMENT_EVENTS}: on_post_deleted() (on_post_created shows the "
        "call of replica_post_add)"
    ),
    check=(
        Suite((*COMMENTS, "services/comments/comments/tests/test_replica.py")),
        Suite(
            (
                *POSTS,
                "services/posts/posts/tests/test_events.py",
                "-k",
                "comment_event",
            )
        ),
    ),
    lessons={
        # The comments service: the replica of posts.
        "test_post_created_adds_the_post_once": Lesson(
            "post.created records the post once, {_id: <post id>, deleted: false, created_at}: "
            "the same event twice, or a duplicate under another event id, leaves one "
            "document",
            3,
        ),
        "test_post_deleted_twice_is_one_tombstone": Lesson(
            "post.deleted sets deleted: true and a deleted_at that never moves back: a "
            "replay or an older post.deleted keeps the later time",
            3,
        ),
        "test_a_late_post_created_cannot_resurrect_a_deleted_post": Lesson(
            "a post.deleted that arrives before its post.created still leaves a tombstone "
            "(the replica never saw the post), and the late post.created changes nothing",
            3,
        ),
        "test_a_read_through_racing_a_post_deleted_keeps_the_tombstone": Lesson(
            "replica_post_add on a tombstoned post leaves the tombstone and returns "
            "deleted=True (the read-through of post_lookup.py relies on it)",
            3,
        ),
        "test_a_replica_hit_needs_no_call_to_posts": Lesson(
            "a post known from its post.created takes comments while the posts service is "
            "down: replica_post_add stores it live",
            3,
        ),
        "test_a_miss_reads_through_and_fills_the_replica": Lesson(
            "a post the replica does not know yet is asked of the posts service once and "
            "recorded live with replica_post_add; its post.created afterwards adds nothing",
            3,
        ),
        "test_a_tombstone_is_404_without_asking_posts": Lesson(
            "a tombstone for a post the replica never saw live answers 404 without asking "
            "the posts service: the tombstone is written even when there is no document",
            3,
        ),
        "owners_delete_call": Lesson(
            "the owner of posts' DELETE /internal/posts/<id>/comments/ tombstones the post at "
            "once (post_lookup.post_deleted calls replica_post_tombstone with now)",
            3,
        ),
        "test_post_deleted_removes_the_posts_comments_only": Lesson(
            "on_post_deleted removes the deleted post's comments (and no other post's), and "
            "a redelivered post.deleted is harmless",
            4,
        ),
        "test_a_payload_without_a_uuid_id_raises_and_stores_nothing": Lesson(
            "on_post_deleted reads the post id with _post_id(envelope) first: a payload "
            "without a uuid id raises EnvelopeError and writes nothing",
            4,
        ),
        "test_a_comment_inserted_after_the_tombstone_is_removed": Lesson(
            "post.deleted tombstones the post in the replica, so a comment inserted just "
            "after it is removed by the service's second look",
            4,
        ),
        "test_sync_mode_never_reads_the_replica": Lesson(
            "on_post_deleted applies post.deleted in either mode (only the lookup of sync "
            "mode ignores the replica)",
            4,
        ),
        # The posts service: the comment counter.
        "test_comment_events_change_the_counter_once_even_when_delivered_twice": Lesson(
            "comment.created adds 1 and comment.deleted takes 1 off the post's CommentCount "
            "(never below 0); no counter row for a post that is not here; a payload without "
            "a usable post_id raises (it is dead-lettered)",
            2,
        ),
        "test_a_comment_event_racing_the_post_delete_leaves_no_counter_behind": Lesson(
            "a comment.created racing the post's delete must wait for it and then find no "
            "post, leaving no counter row: lock the post row before counting",
            4,
        ),
    },
    hints=(
        "Start from what each side may assume. The posts service's handlers run inside "
        "blogbus.inbox.consume_once (exercise 3.2): the counter's change and the inbox row "
        "commit together, and a redelivered event never reaches the handler, so a plain +1 "
        "or -1 is right there. The comments service keeps its replica in MongoDB, with no "
        "transaction and no inbox (BLOGBUS_INBOX = False): each write to posts_replica "
        "({_id: <post id>, deleted, created_at?, deleted_at?}) must leave the same "
        "document however often and in whatever order post.created and post.deleted "
        "arrive. Read on_post_created (what replica_post_add is given, how its result is "
        "used) and post_lookup.py (the other callers).",
        "The counter (posts/events.py): post_id = _post_id(envelope) (it raises for a "
        "payload without a usable post_id). comment.created: nothing when no Post has that "
        "id; else add 1 in the database, not in Python: "
        "CommentCount.objects.filter(post_id=post_id).update(count=F('count') + 1), and "
        "CommentCount.objects.create(post_id=post_id, count=1) when that updated no row. "
        "comment.deleted: the same update with - 1, filtered on count__gt=0 so it never "
        "goes below 0. The imports are there; remove the '# noqa: F401' marks the blank "
        "put on them once they are used (ruff flags a mark that is no longer needed).",
        "MongoDB has an operator for 'only when new' and one for 'only forward'. "
        "replica_post_add: key = _id(post_id); in `with _replica() as replica:` run "
        "replica.update_one({'_id': key}, {'$setOnInsert': fields}, upsert=True) with "
        "fields = {'deleted': False} plus 'created_at' (astimezone(UTC)) when given: it "
        "writes only when there is no document, so it never touches a tombstone. Read the "
        "document back (find_one) and return ReplicaPost(id=post_id, deleted=...). "
        "replica_post_tombstone: refuse a naive deleted_at (ValueError), then "
        "update_one({'_id': key}, {'$set': {'deleted': True}, '$max': {'deleted_at': "
        "deleted_at.astimezone(UTC)}}, upsert=True): the upsert leaves a tombstone for a "
        "post never seen, $max keeps the latest time.",
        "on_post_deleted: post_id = _post_id(envelope) before anything is written, then "
        "repository.replica_post_tombstone(post_id=post_id, "
        "deleted_at=parse_time(envelope.time)), then "
        "repository.comments_delete_of_post(post_id=post_id), and log how many went. "
        "Tombstone first: a comment created meanwhile looks at the replica again after "
        "its insert and removes itself. Two upserts of one new _id at once may raise "
        "DuplicateKeyError: in replica_post_add the document exists then, which is all it "
        "wants (contextlib.suppress); in the tombstone, run the same update without "
        "upsert. Posts side: a comment.created racing the post's delete must not create a "
        "counter row: lock the post row first, "
        "list(Post.objects.select_for_update(no_key=True).filter(pk=post_id).values_list('pk')), "
        "which waits for the delete's transaction and then finds nothing.",
    ),
    after=(
        "STAGE=4 make up   # gateway :8080, posts :8001, comments :8002, each with its relay "
        "and consumer; events through the folder broker .data/bus",
        "P=$(curl -s -XPOST localhost:8080/api/posts/ -H 'Content-Type: application/json' "
        '-d \'{"title":"t","body":"b"}\' | python3 -c \'import json,sys; '
        'print(json.load(sys.stdin)["id"])\')',
        "curl -s -XPOST localhost:8080/api/posts/$P/comments/ -H 'Content-Type: "
        'application/json\' -d \'{"body":"hi"}\'; sleep 3; curl -s localhost:8080/api/posts/$P/'
        "   # comment_count 1: counted from comment.created, no call to comments",
        '.venv/bin/python -c "import pymongo; print(list(pymongo.MongoClient('
        "'mongodb://127.0.0.1:27017').comments.posts_replica.find()))\"   # P, live",
        "kill -STOP $(pgrep -f 'runserver 127.0.0.1:8001'); curl -si -XPOST "
        "localhost:8080/api/posts/$P/comments/ -H 'Content-Type: application/json' -d "
        '\'{"body":"posts asleep"}\' | head -1; kill -CONT $(pgrep -f \'runserver '
        "127.0.0.1:8001')   # 201: the replica knows P, posts is not asked",
        "curl -s -XDELETE localhost:8080/api/posts/$P/; curl -si -XPOST "
        "localhost:8080/api/posts/$P/comments/ -H 'Content-Type: application/json' -d "
        '\'{"body":"late"}\' | head -1   # 404 from the tombstone (find again: '
        "deleted True, deleted_at)",
        ".venv/bin/pytest -c services/comments/pyproject.toml --rootdir services/comments "
        "services/comments/comments/tests/test_bus_worker.py -q   # a real comments worker on "
        "RabbitMQ: post events delivered twice, out of order",
        ".venv/bin/pytest -c services/posts/pyproject.toml "
        "services/posts/posts/tests/test_events.py -k worker -q   # a real posts worker counts "
        "a published comment.created",
    ),
    fast=(
        Suite(
            (
                *COMMENTS,
                "services/comments/comments/tests/test_repository.py",
                "services/comments/comments/tests/test_posts_lookup.py",
            )
        ),
        Suite(
            (
                *POSTS,
                "services/posts/posts/tests/test_selectors.py",
                "services/posts/posts/tests/test_api.py",
            )
        ),
    ),
)
