class DependencyUnavailable(Exception):
    """A dependency (database, another service) cannot answer now: the API
    answers 503 naming it (blogweb.exceptions.api_exception_handler)."""

    def __init__(self, dependency: str):
        super().__init__(dependency)
        self.dependency = dependency
