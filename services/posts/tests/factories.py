import factory
from posts.models import Post

from blogweb.timeutil import now_ms


class PostFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Post

    title = factory.Faker("sentence", nb_words=6)
    body = factory.Faker("paragraph", nb_sentences=5)
    created_at = factory.LazyFunction(now_ms)
