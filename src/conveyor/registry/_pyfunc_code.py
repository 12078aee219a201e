"""The model-from-code file MLflow stores with each registered version.

MLflow runs this file to build the pyfunc model at load time, so no pickled
Python object is stored in the registry (see MLflow's "models from code").
"""

import mlflow.models

from conveyor.registry._pyfunc import ConveyorPyfunc

mlflow.models.set_model(ConveyorPyfunc())
