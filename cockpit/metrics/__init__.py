"""What the screens ask: KPIs, measures, rollups, the unit view, heat, live views, change feed."""
