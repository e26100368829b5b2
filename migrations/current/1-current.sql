-- Enter migration here (rerun-safe: drop ... if exists, create or replace)

