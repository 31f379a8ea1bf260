-- Studio: generations are polled like trainings when their webhooks go missing; single flight
-- across instances needs the time of the last poll on the row itself.

ALTER TABLE generations ADD COLUMN last_polled_at timestamptz;
