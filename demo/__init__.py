"""The demo: a simulated world of customer journeys with a known truth, written into a data root for
`make demo` and the tests. Not part of the product: the wheel ships `pipelines`, `features` and
`models` only, and the pipeline never imports this package (the CLI does, for `demo` alone).

- `simulator`: the seeded world, whose churn follows a known hazard, and its oracle;
- `rates`: what the simulator knows of each customer, and the rates its frictions come at;
- `observable`: what the data can tell of each customer's episodes (the observable oracle);
- `landing`: the world written as landing files and ground truth, and the landing guard;
- `dictionary`: `python -m demo.dictionary` keeps docs/feature_dictionary.md in step with the code.
"""
