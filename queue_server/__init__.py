"""motcua queue server: tickets, counters, ratings, dossiers and the day's figures."""
