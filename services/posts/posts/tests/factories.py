import factory

from blogweb.timeutil import now_ms
from posts.models import Post


class PostFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Post

    title = factory.Faker("sentence", nb_words=6)
    body = factory.Faker("paragraph", nb_sentences=5)
    created_at = factory.LazyFunction(now_ms)
