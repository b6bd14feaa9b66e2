"""The claims the Adversarial evaluation chapter's leaderboard tests: for each activation whose paper (or the KAF
thesis) says it makes a network more robust, that row against the ReLU row of the same protocol
(:func:`symact.benchmark.compare_to_relu`, paired over seeds), on MNIST and on CIFAR-10.

The leaderboard is the book's own question asked of every activation under one protocol (fast adversarial
training, the worst case per image over official AutoAttack, Square, PGD with restarts, a transfer attack and the
row's adaptive attacks). A claim's word comes only from complete rows at the ``paper`` profile; a partial or
``quick`` row reads "not run at a converged protocol". The KAF chapter tests some of the same rows under its
own claims (SiLU and k-WTA on CIFAR-10, the KAN rows on MNIST); they are not repeated here.
"""
from __future__ import annotations

from dataclasses import dataclass

from symact import benchmark
from symact.claims import claim
from symact.experiments import verdicts

__all__ = ["ANCHORS", "LEADERBOARD_CLAIMS", "Anchor", "anchor_table", "judge_row", "question_summary",
           "question_table"]

#: row -> (source, the claim as its source makes it); every row is tested on both data sets
LEADERBOARD_CLAIMS = {
    "kaf": ("kaf-robustness-thesis.txt (its question); kaf-thesis-results.md, fast-adversarial-training tables",
            "Kernel activation functions make a network more robust than ReLU"),
    "kaf-elu": ("kaf-thesis-results.md, KAF_ELU rows of the fast-adversarial-training tables",
                "KAFs initialised to ELU make a network more robust than ReLU"),
    "sapl": ("symmetric-apl.txt, Sec. 5 (robustness experiments)",
             "S-APL makes a network more robust than ReLU"),
    "pdome": ("dome.txt, Table 2 and Sec. 4.2", "PDOME in the hidden layers makes a network more robust"),
    "mdome": ("dome.txt, Table 2 (MDOME with fast adversarial training)",
              "MDOME at the output makes a fast-adversarially-trained network more robust than the softmax"),
    "mrelu": ("saf.txt, Sections 4 and 5", "mReLU with the nonsense class makes a network more robust"),
    "pssilu": ("Dai, Mahloujifar and Mittal 2022 (anchors.md)",
               "PSSiLU improves robustness over ReLU under adversarial training"),
    "silu": ("Xie et al. 2020, Smooth adversarial training (anchors.md)",
             "A smooth activation (SiLU) improves robustness over ReLU under adversarial training"),
}
_DATASETS = {"mnist": "MNIST", "cifar10": "CIFAR-10"}


@dataclass(frozen=True)
class Anchor:
    """A published comparison with ReLU that a leaderboard claim tests, shown beside ours: ``label`` (the
    activation), ``source``, ``finding`` (what the source reports, in words, with its numbers), ``claims``
    (data set -> the claim keys that test it here) and ``differences`` (every way the source's protocol differs
    from the leaderboard's, each a pair: theirs, ours)."""

    label: str
    source: str
    finding: str
    claims: dict
    differences: tuple[tuple[str, str], ...]


def _thesis_gain(name: str, net: str) -> float:
    """The thesis's PGD accuracy of ``name`` minus ReLU's, in points (kaf-thesis-results.md, its tables)."""
    from symact.experiments.kaf_fat import THESIS

    return THESIS[net][name][1] - THESIS[net]["ReLU"][1]


def _xie_gain() -> float:
    from symact.experiments.kaf_adaptive import XIE_RECALLED

    return 100 * (XIE_RECALLED["silu"] - XIE_RECALLED["relu"])


_OURS = ("fast adversarial training (FGSM from a random start) of LeNet-5 on MNIST and the VGG-inspired network on "
         "CIFAR-10, no extra data")
_WORST = "the worst case per image over AutoAttack, Square, PGD-50x10 with the true labels and a transfer attack"


def _anchors() -> tuple[Anchor, ...]:
    thesis = (("PGD-50x10 at 8/255 against the model's predicted labels", _WORST),
              ("one network per activation", "paired over 5 seeds (MNIST) and 3 (CIFAR-10)"),
              ("the thesis's own learning-rate ranges and 60 (VGG) or 80 (ResNet-20) epochs",
               "one range test per activation and the protocol's epochs"),
              ("CIFAR-10 only", "MNIST and CIFAR-10"))
    return (
        Anchor("KAF", "kaf-thesis-results.md, the two fast-adversarial-training tables",
               f"PGD accuracy {_thesis_gain('KAF', 'vgg'):+.2f} points over ReLU (VGG-inspired network) and "
               f"{_thesis_gain('KAF', 'resnet20'):+.2f} (ResNet-20), CIFAR-10, fast adversarial training",
               {"mnist": ("adversarial-evaluation/kaf-vs-relu-mnist",),
                "cifar10": ("adversarial-evaluation/kaf-vs-relu-cifar10",)}, thesis),
        Anchor("KAF initialised to ELU", "kaf-thesis-results.md, the KAF_ELU rows",
               f"PGD accuracy {_thesis_gain('KAF_ELU', 'vgg'):+.2f} points over ReLU (VGG-inspired) and "
               f"{_thesis_gain('KAF_ELU', 'resnet20'):+.2f} (ResNet-20), CIFAR-10",
               {"mnist": ("adversarial-evaluation/kaf-elu-vs-relu-mnist",),
                "cifar10": ("adversarial-evaluation/kaf-elu-vs-relu-cifar10",)}, thesis),
        Anchor("PSSiLU", "Dai, Mahloujifar and Mittal 2022, arXiv 2110.05626; anchors.md",
               "robust accuracy +4.54 points over ReLU (ResNet-18) and +2.69 (WRN-28-10), CIFAR-10 at 8/255, with "
               "about 6 million synthetic training images; RobustBench's Dai2021Parameterizing: 87.02 % clean, "
               "61.55 % AutoAttack; no gain reported without extra data",
               {"mnist": ("adversarial-evaluation/pssilu-vs-relu-mnist",),
                "cifar10": ("adversarial-evaluation/pssilu-vs-relu-cifar10",)},
               (("about 6 million synthetic training images", "none"),
                ("their adversarial training of ResNet-18 and WRN-28-10", _OURS),
                ("one (alpha, beta) pair for the whole network", "the pssilu row learns alpha per channel with beta "
                 "fixed at 0.1; the pssilu-robustbench row has their form"),
                ("AutoAttack alone", _WORST), ("CIFAR-10 only", "MNIST and CIFAR-10"))),
        Anchor("SiLU", "Xie et al. 2020, Smooth adversarial training, arXiv 2006.14536; anchors.md",
               f"robust accuracy {_xie_gain():+.1f} points over ReLU, ResNet-50 on ImageNet",
               {"mnist": ("adversarial-evaluation/silu-vs-relu-mnist",), "cifar10": ("kaf/smooth-at-helps",)},
               (("ImageNet and ResNet-50", "MNIST and CIFAR-10 with small networks"),
                ("their adversarial training at ImageNet scale", _OURS), ("robustness under PGD", _WORST))),
        Anchor("KAN", "Alter, Lapid and Sipper 2025, TMLR; anchors.md",
               "small and medium KANs not consistently more robust than their standard counterparts, large KANs "
               "more robust (MNIST to an ImageNet subset, attacks including AutoAttack)",
               {"mnist": ("kaf/kan-matched-no-more-robust", "kaf/kan-large-more-robust")},
               (("their networks and training", "LeNet-5 with KAN layers in place of its dense layers, under fast "
                 "adversarial training"), ("each attack on its own", _WORST),
                ("six data sets", "MNIST only (the CPU's budget)"))),
    )


#: the published comparisons the leaderboard's claims test (:class:`Anchor`), beside ours in :func:`anchor_table`
ANCHORS = _anchors()
#: claims the KAF chapter already registers on the same rows and data set
_TESTED_ELSEWHERE = {("silu", "cifar10")}


def judge_row(row: str, dataset: str, profile: str) -> verdicts.Judgement | None:
    """The row against ReLU at ``profile`` (complete or partial stored results), or None when either row has
    no finished seed stored."""
    got = benchmark.stored_rows(dataset, profile, [row, "relu"])
    if got[row] is None or got["relu"] is None:
        return None
    try:
        return verdicts.leaderboard_vs_relu(got[row], got["relu"], row=row, dataset=_DATASETS[dataset])
    except ValueError:  # partial rows without a shared finished seed: nothing to judge yet
        return None


def _with_paper(j: verdicts.Judgement, key: str) -> verdicts.Judgement:
    """``j`` with the published finding of the :data:`ANCHORS` entry that ``key`` tests as the paper's words
    (unchanged when no anchor names the claim)."""
    from dataclasses import replace

    for a in ANCHORS:
        if any(key in keys for keys in a.claims.values()):
            return replace(j, paper=f"{a.finding} ({a.source}; not our protocol)")
    return j


def _register(row: str, dataset: str) -> None:
    source, text = LEADERBOARD_CLAIMS[row]
    key = f"adversarial-evaluation/{row}-vs-relu-{dataset}"

    @claim(key, chapter="adversarial-evaluation", section="ae-leaderboard", source=source,
           text=f"{text} (tested: the {row} row against ReLU, {_DATASETS[dataset]} leaderboard)")
    def _judge(profile: str):
        j = judge_row(row, dataset, profile)
        return None if j is None else _with_paper(j, key)


for _row in LEADERBOARD_CLAIMS:
    for _ds in _DATASETS:
        if (_row, _ds) not in _TESTED_ELSEWHERE:
            _register(_row, _ds)


def question_table(profiles: tuple[str, ...] = ("paper", "quick")):
    """The book's question, one line per activation and data set of :data:`LEADERBOARD_CLAIMS` (SiLU on
    CIFAR-10 from the KAF chapter's claim): ``row``, ``dataset``, ``verdict`` (the verdict function's word, or
    :data:`symact.claims.NOT_STORED`), ``ours`` (the effect on worst-case robust accuracy and its interval),
    ``evidence`` and ``profile``. Reads stored results only."""
    import pandas as pd

    from symact.claims import CLAIMS, NOT_STORED, judge

    lines = []
    for row in LEADERBOARD_CLAIMS:
        for ds, name in _DATASETS.items():
            key = ("kaf/smooth-at-helps" if (row, ds) in _TESTED_ELSEWHERE
                   else f"adversarial-evaluation/{row}-vs-relu-{ds}")
            j, prof = judge(CLAIMS[key], profiles)
            lines.append({"row": row, "dataset": name, "verdict": j.word if j else NOT_STORED,
                          "ours": j.ours if j else "", "evidence": j.design if j else "", "profile": prof or ""})
    return pd.DataFrame(lines, columns=["row", "dataset", "verdict", "ours", "evidence", "profile"])


def question_summary(table) -> str:
    """Sentences for the Conclusions from :func:`question_table`: how many comparisons with ReLU have a word
    (complete ``paper`` rows), and how they came out, then the KAF rows' own answer."""
    from symact.claims import NOT_STORED

    judged = table[table["verdict"].isin(("better", "worse", "no detectable difference"))]
    counts = judged["verdict"].value_counts()
    waiting = int((table["verdict"] != NOT_STORED).sum()) - len(judged)
    parts = [f"Of the {len(table)} comparisons with ReLU the leaderboard makes ({table['row'].nunique()} "
             f"activations on {table['dataset'].nunique()} data sets), {len(judged)} rest on complete runs at the "
             "converged protocol"]
    if len(judged):
        parts[-1] += ": " + ", ".join(f"{int(counts.get(w, 0))} {w}" for w in ("better", "worse",
                                                                               "no detectable difference"))
    parts[-1] += (f"; {waiting} have partial or reduced runs stored (numbers shown, no verdict) and "
                  f"{int((table['verdict'] == NOT_STORED).sum())} have nothing stored yet.")
    for ds in table["dataset"].unique():
        kaf = table[(table["row"] == "kaf") & (table["dataset"] == ds)].iloc[0]
        parts.append(f"The KAF against ReLU on {ds}: " + (
            "not run yet." if kaf["verdict"] == NOT_STORED else
            f"**{kaf['verdict']}**, {kaf['ours']} ({kaf['evidence']}; {kaf['profile']} profile)."))
    return " ".join(parts)


def _reading(word: str) -> str:
    """What the verdict function's word means for a published finding that the activation helps (the KAN claims'
    words, from :func:`symact.evaluation.verdict` with an effect or a margin, already say it)."""
    return {"better": "reproduced in direction", "worse": "not reproduced (the opposite direction)",
            "no detectable difference": "not reproduced (no detectable difference)"}.get(
        word, word if word in ("reproduced", "reproduced in sign only", "not reproduced") else "no verdict")


def anchor_table(profiles: tuple[str, ...] = ("paper", "quick")):
    """The published comparisons with ReLU (:data:`ANCHORS`) beside ours: one line per anchor with
    ``activation``, ``published`` (the finding and its source), ``MNIST`` and ``CIFAR-10`` (for each claim that
    tests it on that data set: what the verdict function's word means for the published finding, the word and
    our effect, or :data:`symact.claims.NOT_STORED`;
    "not tested" where no claim does) and ``differences`` (the source's protocol, ours in brackets).
    Reads stored results only."""
    import pandas as pd

    from symact.claims import CLAIMS, NOT_STORED, judge

    def ours(keys) -> str:
        if not keys:
            return "not tested"
        out = []
        for key in keys:
            j, prof = judge(CLAIMS[key], profiles)
            head = "" if len(keys) == 1 else f"{CLAIMS[key].text.split(' (tested')[0]}: "
            out.append(head + (NOT_STORED if j is None else f"{_reading(j.word)}: {j.word}, {j.ours} ({prof} profile)"))
        return "; ".join(out)

    return pd.DataFrame([{"activation": a.label, "published": f"{a.finding} ({a.source})",
                          **{name: ours(a.claims.get(ds, ())) for ds, name in _DATASETS.items()},
                          "differences": "; ".join(f"{theirs} (ours: {ours_})" for theirs, ours_ in a.differences)}
                         for a in ANCHORS],
                        columns=["activation", "published", *_DATASETS.values(), "differences"])
