"""Exercise 2.3: the data migration's verification (counts and per-post checksums)."""

from workshop.blank import Function, Replace
from workshop.catalogue import Exercise, Lesson, Suite

SOURCE = "services/comments/comments/migration_source.py"
COMMENTS = ("-c", "services/comments/pyproject.toml", "--rootdir", "services/comments")
TESTS = "services/comments/comments/tests"

EXERCISE = Exercise(
    id="2.3",
    stage=2,
    title="Data migration: verify the copy (counts and per-post checksums)",
    goal=(
        "The comments service's command import_monolith_comments (`make migrate-stage 2`) "
        "copies the monolith's comments into MongoDB, then verifies the copy: it reads both "
        "sides into a PostChecksums each and compares them. Write the two halves in "
        "services/comments/comments/migration_source.py: PostChecksums.add (one comment "
        "into its post's count and checksum, and into the total) and differences(source, "
        "target, limit=20) (the lines the command prints, at most `limit` of them, and how "
        "many there are). The lines: 'total: S comments in the monolith, T in MongoDB'; "
        "'post <id>: S comments in the monolith, T in MongoDB'; 'post <id>: N comments on "
        "both sides but their checksums differ (monolith <hex>, MongoDB <hex>)'."
    ),
    why=(
        "A copy that says it copied is not a copy that is right: a batch lost to a kill, a "
        "comment on the wrong post, a body cut by an encoding, a timestamp that lost its "
        "milliseconds. Counting rows finds the first; only a checksum per post finds the "
        "rest, and names where to look. The command must read 100,000 comments in seconds "
        "without sorting or holding them: a checksum that ignores order, and memory per post."
    ),
    patterns=(
        "data migration: verify before switching",
        "multiset (order-independent) hash",
        "reconciliation report",
    ),
    minutes=30,
    blanks=(
        Replace(
            SOURCE,
            "Per post: the number of comments and a multiset hash of them (the sum\n"
            "    of each comment's sha256 over (id, body, created_at ms), mod 2**256).\n"
            "    Order-independent, so neither side has to sort, and memory grows with\n"
            "    the number of posts only.",
            "Per post: the number of comments and one checksum of them, built the\n"
            "    same way from the monolith's rows and from MongoDB's documents.",
        ),
        Function(
            SOURCE,
            "PostChecksums.add",
            "count the comment on its post and in the total, and fold it into the post's checksum",
        ),
        Function(
            SOURCE,
            "differences",
            "compare the totals and every post's count and checksum, and report the differences",
        ),
    ),
    check=(Suite((*COMMENTS, f"{TESTS}/test_import_monolith.py")),),
    lessons={
        "test_checksums_count_comments_per_post_and_in_total": Lesson(
            "add() counts each comment on its post (posts[str(post_id)][0]) and in total",
            1,
        ),
        "test_copies_every_comment_with_its_id_post_and_timestamp": Lesson(
            "a faithful copy verifies: both sides' PostChecksums agree and differences() "
            "returns ([], 0), so the command prints 'Verified: ...'",
            1,
        ),
        "test_a_second_run_changes_nothing": Lesson(
            "a faithful copy verifies: differences() of two equal sides is ([], 0)", 1
        ),
        "test_a_run_killed_half_way_resumes_and_ends_verified": Lesson(
            "after a resumed copy the verification must pass: equal sides, no differences",
            1,
        ),
        "test_checksums_do_not_depend_on_the_order_of_the_comments": Lesson(
            "the same comments added in another order must give the same checksums: the "
            "monolith is read in (created_at, id) order, MongoDB in no particular order",
            2,
        ),
        "test_what_mongodb_cannot_keep_of_a_timestamp_is_no_difference": Lesson(
            "a timestamp counts to the millisecond and in UTC (what MongoDB keeps), not "
            "its microseconds or time zone: hash the comment with comment_digest",
            2,
        ),
        "test_the_same_count_with_other_content_is_a_checksum_difference": Lesson(
            "equal counts but another body, timestamp or id must change the post's checksum "
            "(add() folds each comment's digest into it), and differences() reports it: "
            "'post <id>: N comments on both sides but their checksums differ (...)'",
            2,
        ),
        "test_a_changed_body_fails_the_verification_naming_the_post": Lesson(
            "a comment altered in MongoDB must fail the verification: its post's checksum "
            "differs, 'post <id>: N comments on both sides but their checksums differ (...)'",
            2,
        ),
        "test_a_comment_on_another_post_is_a_difference_on_both_posts": Lesson(
            "every post of either side is compared (a post missing on one side has 0 "
            "comments there): 'post <id>: S comments in the monolith, T in MongoDB'",
            3,
        ),
        "test_a_missing_comment_fails_with_a_non_zero_exit_naming_the_post": Lesson(
            "a missing comment is two lines: 'total: S comments in the monolith, T in "
            "MongoDB' and the post's own count line",
            3,
        ),
        "test_differences_are_capped_but_all_counted": Lesson(
            "differences() returns at most `limit` lines (the total's first, then the "
            "posts in a stable order) and the number of ALL differences",
            4,
        ),
    },
    hints=(
        "PostChecksums keeps, per post, a list [count, checksum] in self.posts, keyed by "
        "str(post_id), and the number of comments in self.total. add() starts a post at "
        "[0, 0] (self.posts.setdefault(...)) and adds 1 to its count and to the total. "
        "A comment's fingerprint is comment_digest(comment_id, body, created_at): a "
        "256-bit number over the id, the body and the epoch milliseconds.",
        "The two sides come in different orders, so a post's checksum must not depend on "
        "the order its comments arrive in: a running sha256 over the sequence would. Make "
        "it a multiset hash: ADD the comment's digest to the post's checksum, modulo "
        "CHECKSUM_MODULUS (2**256). Neither side sorts, and memory grows with the number "
        "of posts, not of comments.",
        "differences(): a total line first when the totals differ ('total: S comments in "
        "the monolith, T in MongoDB'). Then every post id of either side (the union of "
        "both keys; a side without the post counts [0, 0]): counts that differ give 'post "
        "<id>: S comments in the monolith, T in MongoDB'; equal counts with other "
        "checksums give 'post <id>: N comments on both sides but their checksums differ "
        "(monolith {_short(a)}, MongoDB {_short(b)})'.",
        "Collect every line, go over the post ids in sorted order (two runs then report "
        "the same), and return (found[:limit], len(found)): the command shows `limit` "
        "lines and says how many more there are.",
    ),
    after=(
        "STAGE=2 make up   # the monolith, the comments service and its MongoDB on :27017",
        "STAGE=2 make seed   # (another terminal) demo data, then make migrate-stage 2: "
        "copied, then 'Verified: 2,000 comments on 200 posts ...'",
        '.venv/bin/python -c \'import pymongo; pymongo.MongoClient("mongodb://127.0.0.1:27017")'
        '.comments.comments.update_one({}, {"$set": {"body": "tampered"}})\'   '
        "# alter one comment in MongoDB",
        "make migrate-stage 2 MIGRATE_ARGS=--verify-only   # exit status 1, naming the post",
        "make migrate-stage 2   # the copy repairs it (1 changed), then it verifies",
    ),
    files_hint=(
        f"{SOURCE}: PostChecksums.add() and differences(); the command that uses them is "
        "services/comments/comments/management/commands/import_monolith_comments.py "
        "(Command._verify)"
    ),
    fast=(
        Suite((*COMMENTS, f"{TESTS}/test_import_monolith.py", "-k", "bulk_upsert")),
        Suite((*COMMENTS, f"{TESTS}/test_repository.py")),
    ),
)
