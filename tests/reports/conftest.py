from tests.funding.test_awards import decided  # noqa: F401 - fixtures
from tests.reviews.conftest import assigned, desk  # noqa: F401
