"""The Ray edge: the Tuner on the driver, the trial worker, per-job caps, progress, Ray jobs.

Importing this package sets the environment Ray reads when it is imported.
"""

import os

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # offline machines; no usage pings
# num_to_keep=1 makes Tune snapshot its experiment state at every checkpoint (a small local write);
# the warning that this "may become a bottleneck" would repeat at every validation.
os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
# Tune's own console output (an experiment box, result tables, INFO lines) would mix with the
# progress view; results and state stay in log/ and in Ray's session logs.
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
