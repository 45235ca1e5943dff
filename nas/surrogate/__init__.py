"""A surrogate benchmark of a trained space: architectures trained once at the space's calibrated search
fidelity, a model of their accuracy, and a search that looks its trials up in that model (`benchmark=surrogate`)
so that samplers and schedulers can be compared on the space users search, over many seeds, in minutes.

Modules, in the order the work uses them (each imports only modules above it; options loads the model only
when a search uses it):

    options    where a space's surrogate files are, and the `benchmark=surrogate` config, checked against the
               search plan before any compute (the plan imports it: a leaf)
    build      which architectures (the space's textbook networks, then random draws that meet its
               constraints, a second seed for some) and their training into conf/surrogate/<space>-<data>.json,
               split between processes, resumable
    features   an architecture as a row of numbers: every parameter of the space, absent values explicit, costs
    model      the regressors (gp, mlp, ridge) and `Surrogate`: mean accuracy and the fidelity's seed noise,
               kept in <space>-<data>.model.json beside the data
    validate   held-out ranking by k-fold cross-validation against the fidelity's seed-to-seed agreement; the
               chosen model fitted and written
    evaluator  the search's evaluator under `benchmark=surrogate` (registered in nas.search.evaluators):
               trials looked up, nothing trains
    front      the surrogate's true front approximated: screened random draws plus an evolutionary search
    __main__   the command: build, fit, front
"""
