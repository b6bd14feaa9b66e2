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

from symact import benchmark
from symact.claims import claim
from symact.experiments import verdicts

__all__ = ["LEADERBOARD_CLAIMS", "judge_row", "question_summary", "question_table"]

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


def _register(row: str, dataset: str) -> None:
    source, text = LEADERBOARD_CLAIMS[row]

    @claim(f"adversarial-evaluation/{row}-vs-relu-{dataset}", chapter="adversarial-evaluation",
           section="ae-leaderboard", source=source,
           text=f"{text} (tested: the {row} row against ReLU, {_DATASETS[dataset]} leaderboard)")
    def _judge(profile: str):
        return judge_row(row, dataset, profile)


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
