"""The architecture search: `nas-search space=<name>` / `python -m nas.search` (see `__main__`), `loop.run_search`
in code.

Modules, in the order a run uses them (each imports only modules above it, plus `optuna_internals`):

    overrides         the command line's habits (`+space=`, `storage=<URL>`) as the config's overrides (a leaf)
    objectives        the objectives, their Optuna directions and trial attribute names (a leaf)
    optuna_internals  every use of Optuna's private API, one function each, with why
    storage           storages by name, their URLs, the retry of lost trials
    norepeat          `sampler.no_repeat`: a sampler wrapper that redraws proposals already evaluated
    study             samplers / pruners by name, the study's identity, create-or-resume, counted trials
    halving           the rule of multi-objective successive halving, pure functions of objective vectors
    scheduler         seam: the rung(s) a candidate is evaluated at (single: the search fidelity; asha:
                      successive halving, rung results on the trials), registered by name with their options
    calibration       is the fidelity calibrated for the space? (the committed conf/calibration/ files)
    guard             Ctrl-C / SIGTERM: stop after the current trial, or at once
    pruning           Optuna's Lightning pruning callback, adapted to pytorch_lightning
    evaluator         seam: evaluating a candidate (training it at the rung, nas.fit), its cost and latency
    tabular           the evaluator of `benchmark=nb201`: results looked up in NAS-Bench-201's tables
    evaluators        the registry of evaluators: `benchmark=<name>` -> its options and its evaluator (none:
                      training; nb201; nas.surrogate's surrogate)
    plan              the validated search configuration and the run configs of trials / follow-ups
    workers           many workers on one study: worker records, lost trials, the shared budget, heartbeats
    trial             one trial's life-cycle, ask -> checks -> evaluate -> tell, ended in one place
    pareto            trial records, their front and hypervolume (the maths of points is nas.pareto)
    followups         after the trials: baselines, retraining, deleting the weights of trials off the front
    reporting/        the report's files (tables, figures, exports, summary.json) and the W&B summary run
    loop              the run loop and its stop rules, then the follow-ups and the report
"""
