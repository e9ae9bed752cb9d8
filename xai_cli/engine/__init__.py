"""The explaining machinery: the model as an explanation graph, rules, and the one backward pass.

A Keras model becomes a graph of ops (:mod:`.graph`, :mod:`.layers`); a rule config
(:mod:`.composites`, matched by :mod:`.context`, after :mod:`.canonizers`) gives every op a
rule (:mod:`.rules`); :mod:`.core` turns any rule into a backward step, and
:mod:`.propagation` walks the graph with them. :mod:`.methods` and :mod:`.explainers` put a
method, a config and the preprocessing together into one compiled explainer. Nothing here
reads or writes files other than rule configs.
"""
