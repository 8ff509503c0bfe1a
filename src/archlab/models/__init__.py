"""Model families. Importing this package registers every model (``archlab list models``)."""

from archlab.models import generative, mlp, vit  # noqa: F401
from archlab.models.cnn import (  # noqa: F401
    alexnet,
    densenet,
    efficientnet,
    googlenet,
    lenet,
    mobilenet,
    resnet,
    simple,
    vgg,
)
from archlab.models.graph import gnn  # noqa: F401
from archlab.models.rnn import (  # noqa: F401
    forecast,
    lm,
    seq2seq,  # noqa: F401
    text,
)
from archlab.models.transformer import bert, classifier, gpt, translator  # noqa: F401,E402
from archlab.scratch import models as _scratch_models  # noqa: F401,E402  (family scratch)
