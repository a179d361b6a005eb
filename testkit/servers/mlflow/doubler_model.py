"""The `doubler` pyfunc model of the `mlflow` test server (an MLflow "model from code").

launch.py saves this file as the model; `mlflow models serve` loads it and calls
`predict` with what the scoring server parsed from the request:

* a pandas DataFrame (`dataframe_split`, `dataframe_records`, `text/csv`): every column
  times `factor` (strings repeat: "ab" -> "abab"); a column named `fail` raises
  ValueError("asked to fail: <first value>");
* a dict of arrays (`inputs`/`instances` as named tensors): each array times `factor`;
  a key `fail` raises the same way;
* an array (`inputs`/`instances` as one tensor): times `factor`.

`factor` is the model parameter of that name (`"params": {"factor": 3}`), default 2.
"""
import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel


def _refuse(value):
    raise ValueError(f"asked to fail: {value}")


class Doubler(PythonModel):
    def predict(self, context, model_input, params=None):
        factor = (params or {}).get("factor", 2)
        if isinstance(model_input, pd.DataFrame):
            if "fail" in model_input.columns:
                _refuse(model_input["fail"].iloc[0] if len(model_input) else "")
            return model_input * factor
        if isinstance(model_input, dict):
            if "fail" in model_input:
                _refuse(np.asarray(model_input["fail"]).ravel()[:1].tolist())
            return {name: np.asarray(value) * factor for name, value in model_input.items()}
        return np.asarray(model_input) * factor


mlflow.models.set_model(Doubler())
