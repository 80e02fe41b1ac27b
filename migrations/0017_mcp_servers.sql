-- A workspace's MCP servers: remote tools the assistant may call, registered by the workspace's
-- owner. Only the allow-listed tools of a server are offered (an empty list offers none). The
-- bearer secret, if any, is sealed with the master key (bound to the server's id) like Calendly
-- tokens: it is never returned by the API and never stored in plaintext.

CREATE TABLE mcp_servers (
    id            uuid        PRIMARY KEY,
    workspace_id  uuid        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name          text        NOT NULL CHECK (name ~ '^[a-z0-9_-]{1,32}$'),
    url           text        NOT NULL,
    token_nonce   bytea,
    token_sealed  bytea,
    allowed_tools text[]      NOT NULL DEFAULT '{}',
    timeout_ms    integer     NOT NULL DEFAULT 10000 CHECK (timeout_ms BETWEEN 100 AND 30000),
    created_by    uuid        REFERENCES users (id) ON DELETE SET NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workspace_id, name),
    CHECK ((token_nonce IS NULL) = (token_sealed IS NULL))
);
