"""cruijff_kit's model-organism datasets: short token sequences labelled by a known rule.

:mod:`~cruijff_model_organism.rules` holds the alphabets, formats and rules,
:mod:`~cruijff_model_organism.weights` the weighted-sum family's dataset-level state,
:mod:`~cruijff_model_organism.spec` checks a ``data.data_generation`` block and sizes its
splits, :mod:`~cruijff_model_organism.generate` makes the data and
:mod:`~cruijff_model_organism.job` writes it to a file.
"""
