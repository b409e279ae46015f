"""Models, query strategies and the simulation of a labelling campaign.

Pure: numpy and scikit-learn only. Never imports Qt, sqlite or the store; works on arrays the use-case
layer hands it. Models are never pickled: they are plain arrays or retrained from labels.

    base          UNLABELLED, QueryResult, QueryStrategy, standardize, call-time validation
    models        make_estimator, fit_model -> TrainedModel, cross_validate_model, from_arrays
    calibration   expected_calibration_error, temperature scaling, isotonic
    committee     Committee, fit_committee (bootstrap members for QBC)
    strategies    STRATEGY_NAMES, get_strategy(name, **params) — the registry
    uncertainty, committee_strategies, coreset, badge, expected, hybrid, coldstart, baseline
                  one module per family, each with its score / selection functions
    simulation    simulate, format_table, plot_curves

Heavy modules (scikit-learn, scipy) are imported by the modules that need them, not here.
"""
