import factory

from blogweb.timeutil import now_ms
from monolith.comments.models import Comment
from monolith.posts.tests.factories import PostFactory


class CommentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Comment

    post = factory.SubFactory(PostFactory)
    body = factory.Faker("sentence", nb_words=12)
    created_at = factory.LazyFunction(now_ms)
