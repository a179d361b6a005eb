"""inferlink's Seldon Core v1 test model (docs/testing.md), served by launch.py.

`predict` answers by payload kind:
  data.ndarray / data.tensor  every number doubled (numpy: ints stay ints, floats
                              stay floats); strings make numpy raise (a model error)
  strData                     the text upper-cased
  binData                     the bytes reversed
  jsonData                    numbers doubled, other values kept, at any depth
Also tags ({"model": "doubler"}), a counter metric, health status and metadata.
"""

import numpy as np


def _double_json(value):
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value * 2
    if isinstance(value, list):
        return [_double_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _double_json(v) for k, v in value.items()}
    return value


class Doubler:
    def __init__(self):
        self.calls = 0
        self.feedback = 0

    def predict(self, X, features_names=None, meta=None):
        self.calls += 1
        if isinstance(X, str):
            return X.upper()
        if isinstance(X, (bytes, bytearray)):
            return bytes(X)[::-1]
        if isinstance(X, dict):
            return _double_json(X)
        return np.asarray(X) * 2

    def send_feedback(self, features, feature_names, reward, truth, routing=None):
        self.feedback += 1
        return []

    def tags(self):
        return {"model": "doubler"}

    def metrics(self):
        return [{"type": "COUNTER", "key": "doubler_calls", "value": 1}]

    def health_status(self):
        return {"status": "ok", "calls": self.calls}

    def init_metadata(self):
        return {
            "name": "doubler",
            "versions": ["1"],
            "platform": "inferlink-test",
            "inputs": [{"name": "input", "datatype": "FP64", "shape": [-1, -1]}],
            "outputs": [{"name": "output", "datatype": "FP64", "shape": [-1, -1]}],
            "custom": {"author": "inferlink"},
        }
