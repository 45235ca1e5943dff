"""What a search leaves behind, written from the results it is given:

tables       the front as a text table; trials.csv / front.csv
figures      the Pareto plot and Optuna's HTML figures
exports      the front as model configs (<study folder>/conf/model/exported/)
report       all of the above plus front.json and summary.json, and the printed front
summary_run  the study's W&B summary run (tables, plots, importances, the front as an artifact)
"""
