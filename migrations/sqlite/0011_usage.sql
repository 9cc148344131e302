-- Usage counts for the Admin Portal's dashboard: sign-ins by outcome, tokens by grant, throttled
-- requests, per application (empty when none) and minute; each node adds its counts every few
-- seconds, and counts older than the longest window the dashboard shows are deleted.
CREATE TABLE usage_counts (
    minute BIGINT NOT NULL,
    metric TEXT NOT NULL,
    client_id TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (minute, metric, client_id)
);
