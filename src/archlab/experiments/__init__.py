"""Runnable experiments that answer the seeds' questions; each writes a report.

Importing this package registers them (``archlab list experiments``).
"""

from archlab.experiments import (  # noqa: F401
    activations_gradients,
    cnn_design,
    cnn_vs_features,
    generative_experiments,
    gnn,
    gpt_bert_experiments,
    lr_schedules,
    mlp_activations,
    mlp_capacity,
    mlp_vs_sklearn,
    optimizers,
    perceptron,
    regularization,
    resnet_experiments,
    rnn_capacity,
    rnn_experiments,
    seq2seq_experiments,
    transfer_learning,
    transformer_experiments,
)
