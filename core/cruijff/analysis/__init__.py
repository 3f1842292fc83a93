"""Analysis: the experiment's question answered from the files in its directory alone.

:mod:`.model` holds the records (what tools contribute and what the analysis finds),
:mod:`.stats` the statistics (scipy and statsmodels), :mod:`.collect` gathers the
observations, :mod:`.compare` pairs cells with their controls and pools seeds, and the report
(:mod:`.tables`, :mod:`.plots`, :mod:`.report`) writes ``analysis/`` deterministically.
"""
