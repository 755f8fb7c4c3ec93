"""Analytics: what patients write, scored (sentiment.py); aspects, rollups and dashboards come later."""
