"""Model families. Importing this package registers every model (``archlab list models``)."""

from archlab.models import mlp  # noqa: F401
from archlab.models.cnn import lenet, simple  # noqa: F401
