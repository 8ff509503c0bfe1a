"""Transformers: attention and its building blocks, the encoder-decoder Transformer, encoder classifiers,
BERT and GPT (with Hugging Face checkpoint conversion). ViT lives in :mod:`archlab.models.vit`."""
