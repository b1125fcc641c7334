"""The closed challenge under review, shared with the review tests."""

from tests.reviews.conftest import assigned, desk  # noqa: F401 - fixtures
