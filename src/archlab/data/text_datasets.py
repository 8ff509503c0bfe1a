"""Text datasets: SST-2, Tiny Shakespeare, English-French pairs, and generated/embedded stand-ins.

Every loader returns an in-memory :class:`~archlab.data.base.DataBundle` whose splits are all
its own (train, val and test), so ``load_dataset``'s ``val_split`` does not apply. The vocab is
built on the training split only (``info.vocab``; ``info.target_vocab`` for seq2seq), ids are
right-padded with ``<pad>`` = 0, and the batch formats are those of the sequence contract. The
generated sets take ``data_seed`` (``load_dataset``'s own ``seed`` only seeds a ``val_split``
hold-out, which these sets never need):

* ``sst2``, ``sentiment`` (kind ``text``): x long (N, max_len) token ids; y long (N,),
  0 = negative, 1 = positive.
* ``tinyshakespeare``, ``corpus`` (kind ``lm``): x long (N, context); y long (N, context), the
  next token of each position.
* ``fra_eng``, ``seq2seq_synthetic`` (kind ``seq2seq``): x long (N, S) source ids ending in
  ``<eos>``; y long (N, T) ``<bos>`` target ids ``<eos>``.

Language-model windows: the token stream of a split is cut into windows of ``context + 1``
tokens starting every ``stride`` tokens (default ``stride = context``: consecutive windows share
one token, so every token but the first is a target exactly once); ``x = w[:-1]``,
``y = w[1:]``. Windows follow the text in order, so an unshuffled loader walks the text
contiguously (what truncated BPTT with a carried state needs).
"""

from __future__ import annotations

import random
import re
import unicodedata
import zipfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from archlab.data.base import ArraySplit, DataBundle, DatasetInfo
from archlab.data.download import RemoteFile, fetch, register_files
from archlab.data.pretrained_vocab import PretrainedVocab, is_pretrained_spec
from archlab.data.text import (
    BOS_ID,
    EOS_ID,
    CharTokenizer,
    Vocab,
    VocabError,
    WordTokenizer,
    make_tokenizer,
    pad_sequences,
)
from archlab.registry import register_dataset
from archlab.utils import ArchlabError

__all__ = [
    "SST2_FILES",
    "TINYSHAKESPEARE_FILE",
    "FRA_ENG_FILE",
    "CORPUS_TEXT",
    "read_sst2_tsv",
    "lm_windows",
    "lm_bundle",
    "make_sentiment",
    "make_seq2seq_task",
    "normalise_date",
    "read_fra_eng",
    "SEQ2SEQ_TASKS",
]

# --------------------------------------------------------------------------------------------
# Files (archlab data download|verify)
# --------------------------------------------------------------------------------------------

_SST2_HOME = ("https://gluebenchmark.com/tasks (GLUE SST-2: https://dl.fbaipublicfiles.com/glue/data/SST-2.zip; "
              "these files re-split GLUE's train 90/10 into train/dev and use GLUE's dev as test)")

# No address serves these three files as they are (they are a re-split of GLUE's SST-2), so they
# cannot be downloaded: place them by hand (or point ARCHLAB_DATA at a folder holding sst2/).
SST2_FILES = (
    RemoteFile("train.tsv", (), "d326d674d60c335d027a80436ee0c229", homepage=_SST2_HOME),
    RemoteFile("dev.tsv", (), "7eaa7d6ed38329c90693efccc95b9286", homepage=_SST2_HOME),
    RemoteFile("test.tsv", (), "268856b487b2a31a28c0a93daaff7288", homepage=_SST2_HOME),
)

TINYSHAKESPEARE_FILE = RemoteFile(
    "input.txt",
    ["https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"],
    "6fb458f1232090904fb40fe944165e91",
    homepage="https://github.com/karpathy/char-rnn",
)


def _check_fra_txt(path: Path) -> None:
    with open(path, encoding="utf-8", errors="replace") as f:
        head = [f.readline() for _ in range(5)]
    if not all("\t" in line for line in head if line):
        raise ArchlabError(f"{path} does not look like manythings.org's fra.txt (english<TAB>french lines)")


# The md5 is that of the 2017-09-29 file (142,787 pairs); manythings.org has since published newer
# files under the same address, which fail the check: keep a copy of the 2017 file.
FRA_ENG_FILE = RemoteFile(
    "fra-eng.zip",
    ["https://www.manythings.org/anki/fra-eng.zip", "http://www.manythings.org/anki/fra-eng.zip"],
    "c49e6073dca8524c9230ee8f68c3cf32",
    unpacked="fra.txt",
    check_unpacked=_check_fra_txt,
    homepage="https://www.manythings.org/anki/ (Tatoeba pairs, CC-BY 2.0; the 2017-09-29 file)",
)

_SST2_SPEC = register_files("sst2", SST2_FILES)
_SHAKESPEARE_SPEC = register_files("tinyshakespeare", (TINYSHAKESPEARE_FILE,))
_FRA_ENG_SPEC = register_files("fra_eng", (FRA_ENG_FILE,))


def _locate(spec, root: Path, download: bool) -> list[Path]:
    return [fetch(f, root, download, dataset=spec.dataset, extra_dirs=spec.extra_dirs) for f in spec.files]


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ArchlabError(f"{path} is not UTF-8 text ({e}); delete it and fetch a fresh copy") from None
    except OSError as e:
        raise ArchlabError(f"cannot read {path}: {e}") from None


def _seeded_split(n: int, fractions: tuple[float, float], seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A seeded (train, val, test) index split holding out ``fractions`` = (val, test) of n."""
    perm = np.random.default_rng(seed).permutation(n)
    n_test = int(round(n * fractions[1]))
    n_val = int(round(n * fractions[0]))
    return perm[n_test + n_val :], perm[n_test : n_test + n_val], perm[:n_test]


def _counts(token_lists: Sequence[Sequence[str]]) -> Counter:
    c: Counter[str] = Counter()
    for toks in token_lists:
        c.update(toks)
    return c


# --------------------------------------------------------------------------------------------
# Text classification: SST-2 and the generated sentiment set
# --------------------------------------------------------------------------------------------

_SENTIMENT_CLASSES = ["negative", "positive"]


def read_sst2_tsv(path: str | Path) -> tuple[list[str], list[int]]:
    """Sentences and 0/1 labels of one SST-2 ``.tsv`` file (``sentence<TAB>label`` lines).

    The header line (``sentence\\tlabel``) is skipped when present. Quotes are plain text (no
    CSV quoting): each line is split at its last tab.

    Raises:
        ArchlabError: a line without a tab or with a label other than 0/1 (file and line named).
    """
    path = Path(path)
    lines = _read_text(path).splitlines()
    if lines and lines[0].rpartition("\t")[2].strip() == "label":
        lines = lines[1:]
    texts, labels = [], []
    for i, line in enumerate(lines, start=2):
        if not line.strip():
            continue
        sentence, tab, label = line.rpartition("\t")
        if not tab or label.strip() not in ("0", "1"):
            raise ArchlabError(
                f"{path}, line {i}: expected 'sentence<TAB>0|1', got {line[:80]!r}; the file is damaged "
                "or not SST-2 (check it with `archlab data verify sst2`)"
            )
        texts.append(sentence.strip())
        labels.append(int(label))
    return texts, labels


def _text_bundle(
    name: str,
    splits: Sequence[tuple[list[str], list[int]]],
    *,
    tokenizer: str,
    min_freq: int,
    max_size: int | None,
    max_len: int,
    lowercase: bool,
    bpe_vocab_size: int,
    source: str,
) -> DataBundle:
    """Build the vocab on splits[0]'s texts and encode every split to (N, max_len) ids."""
    if max_len < 1:
        raise ArchlabError(f"max_len must be >= 1, got {max_len}")
    train_texts = splits[0][0]
    if is_pretrained_spec(tokenizer):  # a checkpoint's tokenizer: [CLS] ... [SEP] with its own ids
        vocab = PretrainedVocab.from_pretrained(tokenizer)
        encoded = [[vocab.encode(t, max_len=max_len) for t in texts] for texts, _ in splits]
    elif tokenizer == "bpe":
        vocab = Vocab.build(train_texts, "bpe", min_freq=min_freq, max_size=max_size,
                            bpe_vocab_size=bpe_vocab_size, lowercase=lowercase)
        encoded = [[vocab.encode(t, max_len=max_len) for t in texts] for texts, _ in splits]
    else:
        tok = make_tokenizer(tokenizer, lowercase=lowercase)
        token_lists = [[tok.tokenize(t) for t in texts] for texts, _ in splits]
        vocab = Vocab.from_counts(_counts(token_lists[0]), tok, min_freq=min_freq, max_size=max_size)
        encoded = [[vocab.lookup(toks[:max_len]) for toks in tl] for tl in token_lists]
    out = []
    for rows, (_, labels) in zip(encoded, splits):
        rows = [r if r else [vocab.unk_id] for r in rows]  # an empty text must not give a length-0 row
        out.append(ArraySplit(pad_sequences(rows, pad_id=vocab.pad_id, max_len=max_len),
                              torch.tensor(labels, dtype=torch.long)))
    info = DatasetInfo(name=name, kind="text", input_shape=(max_len,), num_classes=2,
                       class_names=list(_SENTIMENT_CLASSES), source=source, vocab=vocab)
    return DataBundle(info, *out)


@register_dataset("sst2", family="text", download=True, size="60614/6735/872",
                  description="Stanford Sentiment Treebank, binary (GLUE SST-2 re-split): sentence -> pos/neg")
def sst2(root: Path, download: bool = True, *, tokenizer: str = "word", min_freq: int = 1, max_len: int = 64,
         lowercase: bool = True, max_size: int | None = None, bpe_vocab_size: int = 8000) -> DataBundle:
    """SST-2 (Socher et al. 2013, "Recursive Deep Models for Semantic Compositionality Over a
    Sentiment Treebank"), binary sentiment of movie-review sentences and phrases.

    Files ``sst2/{train,dev,test}.tsv`` (header ``sentence\\tlabel``): 60,614 / 6,735 / 872 rows;
    train/val/test = train/dev/test. These are not GLUE's published split: GLUE's training set
    re-split 90/10 into train/dev, and test.tsv is GLUE's dev set (the 872 sentences papers
    report SST-2 accuracy on). The text is already lowercased and Penn-Treebank tokenized.

    Args:
        tokenizer: ``"word"``, ``"whitespace"``, ``"char"`` or ``"bpe"``; or a pretrained
            checkpoint's (``"minilm"``, ``"hf:FOLDER"``: :mod:`archlab.data.pretrained_vocab`),
            which ``model.init`` of such a checkpoint selects by itself.
        min_freq: keep training tokens seen at least this often (others -> ``<unk>``).
        max_len: T: longer sentences are cut, shorter ones right-padded with 0.
        lowercase: lowercase before tokenizing.
        max_size: cap on the vocab size (specials included).
        bpe_vocab_size: BPE's vocab size (``tokenizer="bpe"``).

    Returns:
        kind ``text``: x long (N, max_len), y long (N,) (0 negative, 1 positive).
    """
    paths = _locate(_SST2_SPEC, root, download)
    splits = [read_sst2_tsv(p) for p in paths]
    return _text_bundle("sst2", splits, tokenizer=tokenizer, min_freq=min_freq, max_size=max_size,
                        max_len=max_len, lowercase=lowercase, bpe_vocab_size=bpe_vocab_size,
                        source=str(paths[0].parent))


_SING_SUBJECTS = ["the movie", "this film", "the story", "the plot", "the acting", "the cast", "the script",
                  "the ending", "the soundtrack", "the dialogue", "the direction", "the pacing",
                  "the cinematography", "the humor", "the sequel", "the lead performance", "this show"]
_PLURAL_SUBJECTS = ["the performances", "the characters", "the jokes", "the action scenes", "the visuals"]
_POS_ADJ = ["good", "great", "wonderful", "excellent", "brilliant", "enjoyable", "delightful", "charming",
            "clever", "moving", "beautiful", "superb", "fun", "gripping", "funny", "touching", "impressive",
            "memorable"]
_NEG_ADJ = ["bad", "terrible", "awful", "boring", "dull", "weak", "poor", "disappointing", "tedious", "clumsy",
            "bland", "forgettable", "painful", "predictable", "messy", "lifeless", "annoying", "mediocre"]
_INTENSIFIERS = ["very", "really", "extremely", "truly", "incredibly", "remarkably", "so", "quite"]
# (base, past) forms
_POS_VERBS = [("love", "loved"), ("enjoy", "enjoyed"), ("like", "liked"), ("adore", "adored"),
              ("admire", "admired"), ("appreciate", "appreciated")]
_NEG_VERBS = [("hate", "hated"), ("dislike", "disliked"), ("loathe", "loathed"), ("despise", "despised"),
              ("resent", "resented")]
_OPENERS = ["honestly,", "overall,", "in the end,", "to be fair,", "frankly,", "all in all,"]


def _clause(rng: random.Random, positive: bool) -> str:
    """One clause whose sentiment is ``positive``; half the time it reaches it through a negation."""
    negated = rng.random() < 0.5
    base_positive = positive != negated  # a negation flips the polarity of the word it governs
    form = rng.random()
    if form < 0.55:  # copular: "the plot was not very good"
        plural = rng.random() < 0.25
        subj = rng.choice(_PLURAL_SUBJECTS if plural else _SING_SUBJECTS)
        be = rng.choice(["are", "were"] if plural else ["is", "was"])
        adj = rng.choice(_POS_ADJ if base_positive else _NEG_ADJ)
        if rng.random() < 0.35:
            adj = f"{rng.choice(_INTENSIFIERS)} {adj}"
        if negated:
            neg = rng.choice(["not", "never", "hardly", "n't"])
            verb = f"{be}n't" if neg == "n't" else f"{be} {neg}"
        else:
            verb = be
        return f"{subj} {verb} {adj}"
    if form < 0.8:  # verbal: "i didn't enjoy the acting"
        who = rng.choice(["i", "we"])
        subj = rng.choice(_SING_SUBJECTS + _PLURAL_SUBJECTS)
        base, past = rng.choice(_POS_VERBS if base_positive else _NEG_VERBS)
        if negated:
            verb = rng.choice([f"did not {base}", f"didn't {base}", f"never {past}", f"hardly {past}"])
        else:
            verb = rng.choice([past, f"really {past}", f"truly {past}"])
        return f"{who} {verb} {subj}"
    # "the story felt dull" / "the story did not feel dull"
    subj = rng.choice(_SING_SUBJECTS)
    adj = rng.choice(_POS_ADJ if base_positive else _NEG_ADJ)
    if negated:
        verb = rng.choice(["did not feel", "didn't feel", "never felt", "hardly felt", "does not seem"])
    else:
        verb = rng.choice(["felt", "seemed", "looked"])
    return f"{subj} {verb} {adj}"


def _sentence(rng: random.Random, positive: bool) -> str:
    r = rng.random()
    if r < 0.35:  # contrast: the clause after "but" decides
        first = _clause(rng, rng.random() < 0.3 if positive else rng.random() >= 0.3)
        s = f"{first}, but {_clause(rng, positive)}"
    elif r < 0.45:  # "although A, B": the main clause B decides
        s = f"although {_clause(rng, not positive)}, {_clause(rng, positive)}"
    else:
        s = _clause(rng, positive)
    if rng.random() < 0.2:
        s = f"{rng.choice(_OPENERS)} {s}"
    return s + rng.choice([".", ".", ".", "!"])


def make_sentiment(n_samples: int = 4000, seed: int = 0) -> tuple[list[str], list[int]]:
    """Generated movie-review sentences with negation and contrast, balanced, without duplicates.

    Each sentence is built for a chosen label: a clause's adjective or verb carries a polarity,
    and a negation (``not``, ``never``, ``hardly``, ``n't``) flips it ("the plot wasn't good" is
    negative, "i did not hate the cast" positive); intensifiers (``very``, ``truly``) keep it;
    in "A, but B" and "although A, B" the sentiment of B decides.

    Returns:
        (texts, labels) with labels 1 = positive, 0 = negative, alternating classes shuffled.
    """
    if n_samples < 2:
        raise ArchlabError(f"n_samples must be >= 2, got {n_samples}")
    rng = random.Random(seed)
    labels = [i % 2 for i in range(n_samples)]
    rng.shuffle(labels)
    texts: list[str] = []
    seen: set[str] = set()
    for label in labels:
        for _ in range(100):
            s = _sentence(rng, bool(label))
            if s not in seen:
                break
        seen.add(s)
        texts.append(s)
    return texts, labels


@register_dataset("sentiment", family="text", size="4000",
                  description="generated movie-review sentences with negation and contrast (offline SST-2 stand-in)")
def sentiment(root: Path | None = None, download: bool = True, *, n_samples: int = 4000, max_len: int = 32,
              data_seed: int = 0, tokenizer: str = "word", min_freq: int = 1) -> DataBundle:
    """A synthetic binary sentiment set whose labels need negation handling (see :func:`make_sentiment`).

    Splits 80/10/10 (seeded); kind ``text``: x long (N, max_len), y long (N,) (1 = positive).
    A bag-of-words model cannot reach 100% here: the same words appear under both labels,
    flipped by "not"/"n't"/"never"/"hardly" and by "but".
    """
    texts, labels = make_sentiment(n_samples, data_seed)
    tr, va, te = _seeded_split(len(texts), (0.1, 0.1), data_seed)
    splits = [([texts[i] for i in idx], [labels[i] for i in idx]) for idx in (tr, va, te)]
    return _text_bundle("sentiment", splits, tokenizer=tokenizer, min_freq=min_freq, max_size=None,
                        max_len=max_len, lowercase=True, bpe_vocab_size=1000,
                        source=f"generated (n_samples={n_samples}, seed {data_seed})")


# --------------------------------------------------------------------------------------------
# Language modelling: Tiny Shakespeare and the embedded corpus
# --------------------------------------------------------------------------------------------


def lm_windows(ids: torch.Tensor, context: int, stride: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut a token stream (N,) into LM examples: x (M, context), y (M, context) = x shifted by one.

    Windows of ``context + 1`` tokens start every ``stride`` tokens (default ``context``); a last
    partial window is dropped.

    Raises:
        ArchlabError: the stream is shorter than one window.
    """
    stride = context if stride is None else stride
    if context < 1 or stride < 1:
        raise ArchlabError(f"context and stride must be >= 1, got {context}, {stride}")
    if len(ids) < context + 1:
        raise ArchlabError(f"a stream of {len(ids)} tokens cannot hold one window of context {context} + 1; "
                           "lower context")
    w = ids.unfold(0, context + 1, stride)  # (M, context + 1)
    return w[:, :-1].contiguous(), w[:, 1:].contiguous()


def _cut(text: str, fraction: float) -> int:
    """A split point near ``fraction`` of ``text``, moved to the next line start when there is one."""
    i = int(len(text) * fraction)
    j = text.find("\n", i)
    return j + 1 if 0 <= j < i + 1000 else i


def lm_bundle(
    name: str,
    text: str,
    *,
    tokenizer: str,
    context: int,
    stride: int | None,
    min_freq: int,
    max_size: int | None,
    bpe_vocab_size: int,
    lowercase: bool,
    source: str,
) -> DataBundle:
    """A language-modelling bundle: first 90% of ``text`` train, next 5% val, last 5% test.

    The cut points move to the next line start, the vocab comes from the training part, and each
    part is cut into windows on its own (:func:`lm_windows`).
    """
    a, b = _cut(text, 0.9), _cut(text, 0.95)
    parts = [text[:a], text[a:b], text[b:]]
    if tokenizer == "bpe":
        vocab = Vocab.build([parts[0]], "bpe", min_freq=min_freq, max_size=max_size,
                            bpe_vocab_size=bpe_vocab_size, lowercase=lowercase)
        streams = [vocab.encode(p) for p in parts]
    else:
        tok = make_tokenizer(tokenizer, lowercase=lowercase)
        token_lists = [tok.tokenize(p) for p in parts]
        vocab = Vocab.from_counts(Counter(token_lists[0]), tok, min_freq=min_freq, max_size=max_size)
        streams = [vocab.lookup(t) for t in token_lists]
    splits = []
    for part_name, s in zip(("train", "val", "test"), streams):
        try:
            splits.append(ArraySplit(*lm_windows(torch.tensor(s, dtype=torch.long), context, stride)))
        except ArchlabError as e:
            raise ArchlabError(f"{name}: the {part_name} part: {e}") from None
    info = DatasetInfo(name=name, kind="lm", input_shape=(context,), source=source, vocab=vocab)
    return DataBundle(info, *splits)


@register_dataset("tinyshakespeare", family="text", download=True, size="1115394 chars",
                  description="Tiny Shakespeare (char-rnn): next-character/word prediction")
def tinyshakespeare(root: Path, download: bool = True, *, tokenizer: str = "char", context: int = 64,
                    stride: int | None = None, min_freq: int = 1, max_size: int | None = None,
                    bpe_vocab_size: int = 2000, lowercase: bool = False) -> DataBundle:
    """Tiny Shakespeare (Karpathy's char-rnn, 1,115,394 characters of Shakespeare's plays).

    Split by position: the first 90% of the text is train, the next 5% val, the last 5% test (cut
    at line starts). Kind ``lm``: x long (N, context), y long (N, context), the next tokens.
    The char vocab has 65 characters + 4 specials.

    Args:
        tokenizer: ``"char"``, ``"word"`` or ``"bpe"``.
        context: T, tokens per example.
        stride: tokens between window starts (default ``context``; smaller gives overlapping
            windows, i.e. more examples).
        min_freq, max_size: vocab pruning (``word``; rare words -> ``<unk>``).
        bpe_vocab_size: BPE's vocab size.
        lowercase: lowercase the text first.
    """
    (path,) = _locate(_SHAKESPEARE_SPEC, root, download)
    text = _read_text(path)
    return lm_bundle("tinyshakespeare", text, tokenizer=tokenizer, context=context, stride=stride,
                     min_freq=min_freq, max_size=max_size, bpe_vocab_size=bpe_vocab_size,
                     lowercase=lowercase, source=str(path))


CORPUS_TEXT = """\
The Lighthouse Keeper

On the northern edge of the bay there is a lighthouse, and for forty years a woman named Edith kept it.
Every evening she climbed the hundred and twelve steps, trimmed the wick, wiped the salt from the glass,
and watched the beam begin its long slow turn across the water. She said the light did not belong to her.
It belonged to the ships she would never meet, to the sailors who would see it once and forget it, and to
the fishermen who came home late with cold hands and full nets.

In spring the fog came in low and thick, and the bell had to be rung by hand. Edith rang it every minute
through the night, counting under her breath, and in the morning her arms ached so much that she could not
lift a cup of tea. In summer the evenings were long and gold, and children from the village walked out
along the sea wall to ask her questions. How far does the light reach? Does it ever go out? Are you lonely?
She answered the first two questions with numbers and the third with a laugh.

The light reached twenty miles on a clear night. It had gone out only once, during the great storm, when the
wind tore a shutter from its hinges and the rain put out the flame. She relit it with shaking fingers and a
box of damp matches, and she stood beside it until dawn, holding her coat over the broken window. Nobody in
the village knew about that night until years later, when a captain wrote a letter to say that his ship had
turned away from the rocks just in time, because a small and stubborn light had come back on.

The River

The river begins as a thin stream high in the hills, where the snow melts slowly under the spring sun. It
runs over stones and under fallen trees, gathering small streams as it goes, until by the time it reaches
the valley it is wide and brown and patient. Farmers lead their cattle down to drink from it. Boys throw
sticks into the current and race along the bank to see which one will reach the bridge first. In the
autumn the leaves turn red and yellow and drift on the surface like little boats with no one to steer them.

A river never stays the same, and yet it is always the same river. The water that passed the mill this
morning is already miles away, and new water has taken its place. Old people in the valley like to say that
you cannot step into the same river twice, and then they step into it anyway, every summer, with their
trousers rolled up to the knee.

On Learning

Learning a new skill is slow at first. The hands do not know what the mind wants, and the mind does not yet
know what to want. A child learning to write presses too hard on the pencil and breaks the point; a student
learning to play the violin makes sounds that send the cat out of the room. But each day the mistakes grow a
little smaller. The pencil moves more easily, the notes come closer to the tune, and one morning, without
any warning, the thing that was hard becomes simple.

Good teachers know this and are patient. They do not expect a perfect answer on the first day. They ask
small questions, listen carefully to the answers, and give the next small question only when the last one
has been understood. A good teacher is like a good gardener: she cannot make the plant grow faster, but she
can give it water, light and time, and she can pull the weeds that would choke it.

The Market

Every Saturday the square fills with stalls before the sun is up. There are apples and pears from the
orchards on the hill, bread still warm from the oven, cheese wrapped in cloth, honey in tall jars, and
flowers in buckets of cold water. The baker sings while he arranges his loaves. The old man who sells
honey tells every customer the same story about the year his bees flew away and came back the next morning
as if nothing had happened. By noon the crowd is thick and loud, and by evening the square is empty again
except for a few pigeons looking for crumbs.

Winter

When winter comes the days grow short and the nights grow long. The lake freezes at the edges first, then
all the way across, and on a still morning you can hear the ice crack and sing as it settles. People walk
faster and talk less. Smoke rises straight up from the chimneys into the pale sky. In the evenings families
sit close to the fire and tell the stories they have told a hundred times before, and nobody minds hearing
them again, because a story told in winter is a kind of warmth.

Then one day the wind turns soft, water begins to drip from the roofs, and the first green shoots push up
through the last patches of snow. The year begins again, as it always has, and as it always will.
"""


@register_dataset("corpus", family="text", size=f"{len(CORPUS_TEXT)} chars",
                  description="a small embedded English text for tiny language models (offline)")
def corpus(root: Path | None = None, download: bool = True, *, tokenizer: str = "char", context: int = 64,
           stride: int | None = None, min_freq: int = 1, max_size: int | None = None,
           bpe_vocab_size: int = 500, lowercase: bool = False) -> DataBundle:
    """A few KB of plain English prose written for archlab (public domain), for tiny LMs offline.

    Split and windows as ``tinyshakespeare`` (90/5/5 by position). Kind ``lm``: x, y long (N, context).
    """
    return lm_bundle("corpus", CORPUS_TEXT, tokenizer=tokenizer, context=context, stride=stride,
                     min_freq=min_freq, max_size=max_size, bpe_vocab_size=bpe_vocab_size, lowercase=lowercase,
                     source="embedded (archlab.data.text_datasets.CORPUS_TEXT)")


# --------------------------------------------------------------------------------------------
# Seq2seq: English-French pairs and synthetic tasks
# --------------------------------------------------------------------------------------------

def _normalise_pair_text(text: str) -> str:
    # NFC so that an accent is one character; French thin spaces before "!?;:" become plain spaces;
    # typographic apostrophes become "'" (str.replace: far faster than str.translate on 10 MB).
    text = unicodedata.normalize("NFC", text)
    for old, new in (("\u202f", " "), ("\xa0", " "), ("\u2009", " "), ("\u2019", "'"), ("\u2018", "'")):
        text = text.replace(old, new)
    return text.strip()


def read_fra_eng(path: str | Path, *, normalise: bool = False) -> list[tuple[str, str]]:
    """The (english, french) pairs of manythings.org's ``fra-eng.zip`` (or an extracted ``fra.txt``).

    The file is read straight from the zip (nothing is extracted). Lines are
    ``english<TAB>french[<TAB>attribution]`` (newer files add the attribution column).
    ``normalise``: lowercase, Unicode NFC, and French thin/no-break spaces as plain spaces
    (done once on the whole text: much faster than line by line).

    Raises:
        ArchlabError: not a zip holding ``fra.txt`` / not UTF-8 text.
    """
    path = Path(path)
    try:
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as z:
                names = [n for n in z.namelist() if n.rsplit("/", 1)[-1] == "fra.txt"]
                if not names:
                    raise ArchlabError(f"{path} holds no fra.txt (members: {z.namelist()[:5]})")
                raw = z.read(names[0])
        else:
            raw = path.read_bytes()
        text = raw.decode("utf-8")
    except (zipfile.BadZipFile, UnicodeDecodeError, OSError) as e:
        raise ArchlabError(
            f"{path} is damaged or not manythings.org's fra-eng.zip ({type(e).__name__}: {e}); expected md5 "
            f"{FRA_ENG_FILE.md5}; delete it and fetch a fresh copy"
        ) from None
    if normalise:
        text = _normalise_pair_text(text).lower()
    pairs = []
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) >= 2 and parts[0].strip() and parts[1].strip():
            pairs.append((parts[0].strip(), parts[1].strip()))
    return pairs


_PUNCT_TOKEN = re.compile(r"(?:^| )[^\w ]+(?= |$)")


def _n_words(tokens: Sequence[str]) -> int:
    """Tokens holding a letter or digit (punctuation tokens do not count)."""
    return len(tokens) - len(_PUNCT_TOKEN.findall(" ".join(tokens)))


def _seq2seq_bundle(
    name: str,
    src: list[list[int]],
    tgt: list[list[int]],
    splits: tuple[np.ndarray, np.ndarray, np.ndarray],
    src_vocab: Vocab,
    tgt_vocab: Vocab,
    source: str,
) -> DataBundle:
    """x = source ids + <eos>; y = <bos> target ids <eos>; both padded to their longest row overall."""
    x = pad_sequences([s + [EOS_ID] for s in src])  # (N, S)
    y = pad_sequences([[BOS_ID, *t, EOS_ID] for t in tgt])  # (N, T)
    out = [ArraySplit(x[torch.from_numpy(idx)], y[torch.from_numpy(idx)]) for idx in splits]
    info = DatasetInfo(name=name, kind="seq2seq", input_shape=(x.shape[1],), source=source,
                       vocab=src_vocab, target_vocab=tgt_vocab)
    return DataBundle(info, *out)


@register_dataset("fra_eng", family="text", download=True, size="142787 pairs",
                  description="English-French sentence pairs (Tatoeba via manythings.org) for translation")
def fra_eng(root: Path, download: bool = True, *, max_words: int = 10, num_pairs: int | None = None,
            min_freq: int = 2, reverse: bool = False, data_seed: int = 0) -> DataBundle:
    """English -> French translation pairs (Tatoeba, via manythings.org's ``fra-eng.zip``, 2017-09-29).

    Each side is lowercased (French accents kept) and tokenized with the word tokenizer
    (punctuation separated, ``"don't"`` -> ``do n't``, ``"l'homme"`` -> ``l' homme``); pairs with
    more than ``max_words`` words (tokens with a letter or digit) on either side are dropped.
    Of the kept pairs (a seeded random subset of ``num_pairs`` of them when given), a seeded 5%
    is the test set, another 5% val, the rest train. Vocabs come from the training pairs
    (words seen fewer than ``min_freq`` times -> ``<unk>``). The same English sentence can appear with several
    translations, in different splits (as in every use of this file).

    Args:
        max_words: longest sentence kept, in words.
        num_pairs: keep a seeded random subset of this many pairs (quick runs); None keeps all.
        min_freq: vocab threshold for both languages.
        reverse: translate French -> English instead.
        data_seed: seed of the subset and the splits.

    Returns:
        kind ``seq2seq``: x long (N, S) source ids ending in ``<eos>``; y long (N, T)
        ``<bos> ... <eos>``; ``info.vocab`` the source vocab, ``info.target_vocab`` the target's.
    """
    (path,) = _locate(_FRA_ENG_SPEC, root, download)
    tok = WordTokenizer(lowercase=True)  # kept in the vocabs: raw text at prediction time is lowercased
    split_words = WordTokenizer(lowercase=False).tokenize  # the pairs come lowercased already
    pairs = read_fra_eng(path, normalise=True)
    if num_pairs is not None and num_pairs < 20:
        raise ArchlabError(f"num_pairs={num_pairs} is too small for train/val/test splits; use >= 20 or None")
    # Visit the pairs in a seeded random order and stop once num_pairs are kept: a uniform random
    # subset of the kept pairs that tokenizes only about num_pairs pairs (quick runs stay quick).
    order = range(len(pairs)) if num_pairs is None else np.random.default_rng(data_seed).permutation(len(pairs))
    kept: list[tuple[int, list[str], list[str]]] = []
    en_cache: dict[str, list[str]] = {}  # an English sentence often comes with several translations
    for i in order:
        en, fr = pairs[i]
        e = en_cache.get(en)
        if e is None:
            e = en_cache[en] = split_words(en)
        if not 0 < _n_words(e) <= max_words:
            continue
        f = split_words(fr)
        if 0 < _n_words(f) <= max_words:
            kept.append((int(i), e, f))
            if num_pairs is not None and len(kept) == num_pairs:
                break
    if not kept:
        raise ArchlabError(f"no pair of {path} has <= {max_words} words on both sides; raise max_words")
    kept.sort(key=lambda t: t[0])  # file order, whatever the visiting order
    en_side = [e for _, e, _ in kept]
    fr_side = [f for _, _, f in kept]
    src_side, tgt_side = (fr_side, en_side) if reverse else (en_side, fr_side)
    splits = _seeded_split(len(src_side), (0.05, 0.05), data_seed)
    train = splits[0]
    vocabs = []
    for side in (src_side, tgt_side):
        try:
            vocabs.append(Vocab.from_counts(_counts([side[i] for i in train]), tok, min_freq=min_freq))
        except VocabError as e:
            raise ArchlabError(f"fra_eng: {e} (num_pairs={num_pairs} may be too small)") from None
    src_vocab, tgt_vocab = vocabs
    src = [src_vocab.lookup(t) for t in src_side]
    tgt = [tgt_vocab.lookup(t) for t in tgt_side]
    direction = "fr->en" if reverse else "en->fr"
    return _seq2seq_bundle("fra_eng", src, tgt, splits, src_vocab, tgt_vocab, source=f"{path} ({direction})")


SEQ2SEQ_TASKS = ("reverse", "copy", "sort", "dates")

_MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december"]
_DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]


def normalise_date(year: int, month: int, day: int) -> str:
    """The ISO form ``YYYY-MM-DD`` (the target of the ``dates`` task)."""
    return f"{year:04d}-{month:02d}-{day:02d}"


def _date_text(rng: random.Random, year: int, month: int, day: int) -> str:
    """One of the written forms of a date. Slashes are always month first (US), dots day first."""
    name = _MONTHS[month - 1]
    short = name[:3]
    forms = [
        f"{name} {day} {year}",  # march 5 2021
        f"{day} {name} {year}",  # 5 march 2021
        f"{name} {day}, {year}",  # march 5, 2021
        f"{month:02d}/{day:02d}/{year}",  # 03/05/2021
        f"{short} {day}, {year % 100:02d}",  # mar 5, 21
        f"{day} {short} {year}",  # 5 mar 2021
        f"{day}.{month}.{year % 100:02d}",  # 5.3.21
    ]
    return rng.choice(forms)


def make_seq2seq_task(
    task: str, n_samples: int, *, min_len: int = 3, max_len: int = 10, alphabet: str = "abcdefghij", seed: int = 0
) -> tuple[list[str], list[str]]:
    """(sources, targets) of a synthetic seq2seq task.

    * ``reverse``: ``"cabd"`` -> ``"dbac"``; ``copy``: ``"cabd"`` -> ``"cabd"``; ``sort``:
      ``"cabd"`` -> ``"abcd"``: random strings over ``alphabet`` of ``min_len``..``max_len`` symbols.
    * ``dates``: a date between 1950 and 2049 written one of 7 ways (``"march 5 2021"``,
      ``"5 march 2021"``, ``"march 5, 2021"``, ``"03/05/2021"`` (month first), ``"mar 5, 21"``,
      ``"5 mar 2021"``, ``"5.3.21"`` (day first)) -> ``"2021-03-05"``; two-digit years are 1950-2049.
    """
    if task not in SEQ2SEQ_TASKS:
        raise ArchlabError(f"unknown seq2seq task {task!r}; valid tasks: {', '.join(SEQ2SEQ_TASKS)}")
    rng = random.Random(seed)
    src, tgt = [], []
    if task == "dates":
        for _ in range(n_samples):
            year, month = rng.randint(1950, 2049), rng.randint(1, 12)
            leap = month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
            day = rng.randint(1, _DAYS_IN_MONTH[month - 1] + int(leap))
            src.append(_date_text(rng, year, month, day))
            tgt.append(normalise_date(year, month, day))
        return src, tgt
    if not 1 <= min_len <= max_len:
        raise ArchlabError(f"need 1 <= min_len <= max_len, got {min_len}, {max_len}")
    if len(set(alphabet)) < 2:
        raise ArchlabError(f"alphabet needs at least 2 distinct symbols, got {alphabet!r}")
    for _ in range(n_samples):
        s = "".join(rng.choice(alphabet) for _ in range(rng.randint(min_len, max_len)))
        src.append(s)
        tgt.append(s[::-1] if task == "reverse" else "".join(sorted(s)) if task == "sort" else s)
    return src, tgt


@register_dataset("seq2seq_synthetic", family="text", size="5000",
                  description="synthetic seq2seq tasks: reverse, copy, sort, date normalisation (offline)")
def seq2seq_synthetic(root: Path | None = None, download: bool = True, *, task: str = "reverse",
                      n_samples: int = 5000, min_len: int = 3, max_len: int = 10, alphabet: str = "abcdefghij",
                      data_seed: int = 0) -> DataBundle:
    """Character-level synthetic translation tasks (see :func:`make_seq2seq_task`).

    Splits 80/10/10 (seeded). Kind ``seq2seq``: x long (N, S) source characters + ``<eos>``,
    y long (N, T) ``<bos>`` target characters ``<eos>``. For reverse/copy/sort source and
    target share one vocab (specials + ``alphabet``; ``info.target_vocab`` is the same object);
    for dates the source vocab holds the characters of the written forms and the target vocab
    ``0-9`` and ``-``. ``min_len``/``max_len``/``alphabet`` apply to reverse/copy/sort only.
    """
    src_text, tgt_text = make_seq2seq_task(task, n_samples, min_len=min_len, max_len=max_len,
                                           alphabet=alphabet, seed=data_seed)
    char = CharTokenizer()
    if task == "dates":
        src_vocab = Vocab.from_tokens(sorted(set("".join(_MONTHS) + "0123456789 ,./")), char)
        tgt_vocab = Vocab.from_tokens("0123456789-", char)
    else:
        src_vocab = tgt_vocab = Vocab.from_tokens(sorted(set(alphabet)), char)
    src = [src_vocab.encode(s) for s in src_text]
    tgt = [tgt_vocab.encode(t) for t in tgt_text]
    splits = _seeded_split(n_samples, (0.1, 0.1), data_seed)
    return _seq2seq_bundle("seq2seq_synthetic", src, tgt, splits, src_vocab, tgt_vocab,
                           source=f"generated (task={task}, n_samples={n_samples}, seed {data_seed})")
