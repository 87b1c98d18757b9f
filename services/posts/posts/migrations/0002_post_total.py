"""The kept post total: PostTotal and the triggers that keep it in step with
posts_post (the monolith's migration 0002, same SQL), so the list's ``count``
is O(1) on PostgreSQL and on the embedded SQLite alike."""

from django.db import migrations, models

# PostgreSQL: statement-level triggers with transition tables, so a bulk
# insert or delete of N rows updates the total once, by N.
POSTGRESQL_TRIGGERS = """
CREATE FUNCTION posts_total_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO posts_posttotal (id, posts) SELECT 1, count(*) FROM inserted_rows
    ON CONFLICT (id) DO UPDATE SET posts = posts_posttotal.posts + EXCLUDED.posts;
    RETURN NULL;
END $$;
CREATE FUNCTION posts_total_after_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE posts_posttotal SET posts = posts - (SELECT count(*) FROM deleted_rows) WHERE id = 1;
    RETURN NULL;
END $$;
CREATE TRIGGER posts_total_insert AFTER INSERT ON posts_post
    REFERENCING NEW TABLE AS inserted_rows
    FOR EACH STATEMENT EXECUTE FUNCTION posts_total_after_insert();
CREATE TRIGGER posts_total_delete AFTER DELETE ON posts_post
    REFERENCING OLD TABLE AS deleted_rows
    FOR EACH STATEMENT EXECUTE FUNCTION posts_total_after_delete();
"""
POSTGRESQL_DROP = """
DROP TRIGGER IF EXISTS posts_total_insert ON posts_post;
DROP TRIGGER IF EXISTS posts_total_delete ON posts_post;
DROP FUNCTION IF EXISTS posts_total_after_insert();
DROP FUNCTION IF EXISTS posts_total_after_delete();
"""
# SQLite (the embedded profile) has row-level triggers only.
SQLITE_TRIGGERS = [
    """CREATE TRIGGER posts_total_insert AFTER INSERT ON posts_post BEGIN
        INSERT OR IGNORE INTO posts_posttotal (id, posts) VALUES (1, 0);
        UPDATE posts_posttotal SET posts = posts + 1 WHERE id = 1;
    END""",
    """CREATE TRIGGER posts_total_delete AFTER DELETE ON posts_post BEGIN
        UPDATE posts_posttotal SET posts = posts - 1 WHERE id = 1;
    END""",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS posts_total_insert",
    "DROP TRIGGER IF EXISTS posts_total_delete",
]


def create_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRESQL_TRIGGERS)
    elif vendor == "sqlite":
        for statement in SQLITE_TRIGGERS:
            schema_editor.execute(statement)
    else:
        raise NotImplementedError(f"no post total triggers for {vendor}")
    Post = apps.get_model("posts", "Post")
    PostTotal = apps.get_model("posts", "PostTotal")
    PostTotal.objects.update_or_create(id=1, defaults={"posts": Post.objects.count()})


def drop_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRESQL_DROP)
    else:
        for statement in SQLITE_DROP:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("posts", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="PostTotal",
            fields=[
                (
                    "id",
                    models.PositiveSmallIntegerField(default=1, primary_key=True, serialize=False),
                ),
                ("posts", models.BigIntegerField(default=0)),
            ],
            options={
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("id", 1)), name="post_total_single_row"
                    )
                ],
            },
        ),
        migrations.RunPython(create_triggers, drop_triggers),
    ]
