"""The claims of symmetric-apl.txt the S-APL chapter tests, registered with :func:`symact.claims.claim`.

Each judge only reads stored results (``Experiment.stored``) and returns a
:class:`symact.experiments.verdicts.Judgement`, or None when what it needs is not stored at that profile.
"""
from __future__ import annotations

from symact.claims import claim
from symact.experiments import verdicts as vd
from symact.experiments.sapl.embedding import tsne
from symact.experiments.sapl.robustness import ROBUSTNESS, STRONG
from symact.experiments.sapl.table1 import PAPER_TABLE1, PAPER_TABLE7, TABLE1

__all__ = ["TABLE1_CLAIMS"]

_ROW_NAMES = {("lenet", "mnist", False): "LeNet-5 on MNIST", ("mlp", "mnist", False): "the MLP on MNIST",
              ("lenet", "cifar10", False): "LeNet-5 on CIFAR-10",
              ("lenet", "cifar10", True): "LeNet-5 on CIFAR-10 with data augmentation"}
_BEST = {"prelu": "PReLU", "swish": "Swish"}


def _table1_judge(key):
    def judge(profile):
        stored = TABLE1[key].stored(profile)
        if stored is None or not stored.get("ttest"):
            return None
        return vd.sapl_table1(stored, PAPER_TABLE1[key])
    return judge


#: the Table 1 row of each claim key
TABLE1_CLAIMS = {}
for _key in PAPER_TABLE1:
    _name = f"sapl/table1-{_key[0]}-{_key[1]}{'-da' if _key[2] else ''}"
    _best, _b, _s, _ = PAPER_TABLE1[_key]
    TABLE1_CLAIMS[_name] = _key
    claim(_name, chapter="sapl", section="sapl-table1",
          source=f"symmetric-apl.txt, Tables 1 and 7 (p = {PAPER_TABLE7[_key][1]})",
          text=f"With {_ROW_NAMES[_key]}, S-APL's test error ({_s} %) is lower than the best of eight baselines' "
               f"({_BEST[_best]}, {_b} %)")(_table1_judge(_key))


def _rob(profile):
    got = {a: ROBUSTNESS[a].stored(profile) for a in ("sapl", "relu")}
    return None if any(v is None for v in got.values()) else got


def _largest(r) -> str:
    return max(r["sapl"]["sets"], key=int)


def _table_judge(attack: str):
    def judge(profile):
        r = _rob(profile)
        if r is None:
            return None
        return vd.sapl_robustness(r["sapl"], r["relu"], attack, _largest(r),
                                  paper_a=vd.sapl_paper_rate("sapl", attack), paper_b=vd.sapl_paper_rate("relu", attack))
    return judge


claim("sapl/onepixel", chapter="sapl", section="sapl-robustness", source="symmetric-apl.txt, Table 2 (LeNet-5)",
      text="One-pixel attacks fool fewer images of an S-APL LeNet-5 than of a ReLU one (29 % against 61 %)")(
    _table_judge("onepixel/1"))
claim("sapl/fgsm", chapter="sapl", section="sapl-robustness", source="symmetric-apl.txt, Table 3 (LeNet-5)",
      text="FGSM at eps 0.04 fools fewer images of an S-APL LeNet-5 than of a ReLU one (44 % against 64 %)")(
    _table_judge("fgsm/0.04"))
claim("sapl/cw", chapter="sapl", section="sapl-robustness", source="symmetric-apl.txt, Table 4 (LeNet-5)",
      text="CW-L2 fools fewer images of an S-APL LeNet-5 than of a ReLU one (72 % against 83 %)")(_table_judge("cw"))


@claim("sapl/cw-distance", chapter="sapl", section="sapl-strong",
       source="symmetric-apl.txt, Section 6 and Table 4 (LeNet-5), tested by distance",
       text="S-APL networks resist CW-L2 better than ReLU networks: their nearest adversarial images are farther away")
def _cw_distance(profile):
    stored = STRONG.stored(profile)
    return None if stored is None else vd.sapl_strong(stored, "cw")


@claim("sapl/robust-curve", chapter="sapl", section="sapl-strong",
       source="symmetric-apl.txt, Section 6 (LeNet-5), tested on a curve over epsilon",
       text="S-APL networks are more robust than ReLU networks (here: worst-case robust accuracy at eps 1/255)")
def _robust_curve(profile):
    stored = STRONG.stored(profile)
    return None if stored is None else vd.sapl_strong(stored, "robust", eps=1 / 255)


@claim("sapl/fig4-separation", chapter="sapl", section="sapl-tsne", source="symmetric-apl.txt, Section 6, Fig. 4",
       text="An S-APL LeNet-5's logits separate CIFAR-10 frogs from ships better than a ReLU one's")
def _fig4(profile):
    ts = tsne.stored(profile)
    if ts is None:
        return None
    a = ts["activations"]
    return vd.single_network(ts, effect=a["sapl"]["logits_all"]["silhouette"] - a["relu"]["logits_all"]["silhouette"],
                             what="S-APL's silhouette of the logits of every frog and ship test image minus ReLU's")
