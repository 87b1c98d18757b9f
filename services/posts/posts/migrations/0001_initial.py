import uuid

import django.db.models.functions.text
import django.db.models.lookups
from django.db import migrations, models

import blogweb.timeutil


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="Post",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("title", models.CharField(max_length=200)),
                ("body", models.TextField()),
                (
                    "created_at",
                    models.DateTimeField(default=blogweb.timeutil.now_ms, editable=False),
                ),
            ],
            options={
                "indexes": [
                    models.Index(fields=["-created_at", "-id"], name="post_newest_first_idx")
                ],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("title", ""), _negated=True),
                        name="post_title_not_empty",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("body", ""), _negated=True), name="post_body_not_empty"
                    ),
                    models.CheckConstraint(
                        condition=django.db.models.lookups.LessThanOrEqual(
                            django.db.models.functions.text.Length("body"), 20000
                        ),
                        name="post_body_max_length",
                    ),
                ],
            },
        ),
    ]
