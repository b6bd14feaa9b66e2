"""Experiments of the S-APL chapter (../shared/papers/symmetric-apl.txt), one module per family:
:mod:`.training` (``dynamics``, ``dynamics-lenet``), :mod:`.hinge_tables` (``hinges``, ``hinges-cifar10``),
:mod:`.table1` (``table1-*``), :mod:`.robustness` (``robustness-lenet-cifar10-*``, ``strong-lenet-cifar10``),
:mod:`.embedding` (``tsne-lenet-cifar10``), on :mod:`.common` (the training recipes); :mod:`.report` turns
their stored results into the chapter's tables (pandas DataFrames) and sentences, :mod:`.plots` draws them;
:mod:`.claims` registers the paper's claims
the chapter tests. Everything is re-exported here, so ``from symact.experiments import sapl`` is the one import.


- ``dynamics``: the S-APL shapes through training and the training-loss
  trajectories of Section 5 (Figs. 1 to 3): the MLP of Appendix 8.2 on MNIST
  with ReLU, leaky ReLU, S-APL and its S-APL-positive / S-APL-negative
  ablations, batch normalisation before every activation. The two-stage
  hypothesis is measured, not only pictured: for every snapshot and layer,
  the mean S-APL output on the negative half-line under the unit Gaussian
  that batch normalisation targets, ``m- = E[h(X) | X < 0]``, ``X ~ N(0, 1)``.
  The paper's first stage predicts ``m- < 0`` early, its second ``m- > 0`` late.
- ``dynamics-lenet``: the same for LeNet-5 on MNIST (Fig. 2), BN before every activation, trained with
  the Table 1 LeNet-5 recipe.
- ``table1-<network>-<dataset>``: Table 1 (error rates, mean and standard
  deviation over seeds) and Table 7 (t-test of S-APL against the best
  baseline): LeNet-5 on MNIST and CIFAR-10 (with and without data
  augmentation), the MLP of Appendix 8.2 on MNIST. :data:`TABLE1_EXTRA` registers the rows the book shows
  only when their paper run is stored: ResNet-18 on CIFAR-10 (a GPU job) and every CIFAR-100 row (no
  offline copy of CIFAR-100 on our machines; ``symact.data`` loads one a reader downloads).
- ``hinges``: Tables 5 and 6 (Appendix 8.1), MNIST row: the MLP of Table 5
  (256, 64, 32 units) with S = 2..6 hinges a side, one S-APL shared by a
  layer or one per neuron: test error, added parameters, time per epoch.
- ``hinges-cifar10``: Tables 5 and 6, CIFAR-10 rows: LeNet-5 with S = 2..6 hinges a side, one S-APL shared by
  a layer or one per channel (the paper's is per neuron), with Tanh and Maxout (six pieces) timed beside them.
- ``robustness-lenet-cifar10-<activation>``: Tables 2 to 4 (Section 6), LeNet-5 rows: ReLU, APL, Swish and
  S-APL networks on CIFAR-10 under one-, three- and five-pixel differential evolution, FGSM and CW-L2, with
  the paper's avg |Z_true - Z_adv|, on the paper's 100 random test images and on 1,000 (Wilson 95%
  intervals); then PGD-50 with restarts and AutoAttack at eps 8/255.
- ``tsne-lenet-cifar10``: Fig. 4 (Section 6): t-SNE of the pre-softmax outputs of ReLU and S-APL LeNet-5
  for CIFAR-10 frog and ship test images, with the class separation measured (silhouette, kNN accuracy)
  in the t-SNE plane and in the logit space.
"""
from symact import attacks  # noqa: F401  (tests patch symact.attacks through this name)
from symact.experiments.sapl.common import *  # noqa: F401,F403
from symact.experiments.sapl.common import LeNetRecipe, MLPRecipe, _lenet_recipe, _train_lenet, _train_mlp  # noqa: F401
from symact.experiments.sapl.training import *  # noqa: F401,F403
from symact.experiments.sapl.hinge_tables import *  # noqa: F401,F403
from symact.experiments.sapl.table1 import *  # noqa: F401,F403
from symact.experiments.sapl.table1 import _table1_act  # noqa: F401
from symact.experiments.sapl.robustness import *  # noqa: F401,F403
from symact.experiments.sapl.robustness import _robustness_units, _section6_act  # noqa: F401
from symact.experiments.sapl.embedding import *  # noqa: F401,F403
from symact.experiments.sapl import common, embedding, hinge_tables, robustness, table1, training
from symact.experiments.sapl import plots, report  # noqa: F401  (the chapter's tables and plots: sexp.report.*)

__all__ = [*common.__all__, *training.__all__, *hinge_tables.__all__, *table1.__all__, *robustness.__all__,
           *embedding.__all__]
from symact.experiments.sapl import claims  # noqa: F401,E402  (registers the chapter's claims)
