"""How faithful heatmaps are, for any kind of input: perturbation curves, AOPC and their
tallies (faithfulness), region perturbation (perturbation, imputation), paired comparisons
(paired) and localisation. A kind of input builds its perturbation unit on them
(:mod:`xai_cli.kinds`); the jobs write what they measure."""
