# Runs first on every reset. Kept minimal: anything that fails here would
# stop the board before main.py's supervisor loop could recover.
import gc

gc.collect()
