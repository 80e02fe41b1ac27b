-- Calendly OAuth: a state is bound to the browser that started the flow (the SHA-256 of a nonce
-- held in an HttpOnly cookie) and carries its PKCE code_verifier, sealed with the master key.
-- States made before this have no browser and can no longer be spent (they last 10 minutes).
ALTER TABLE calendly_oauth_states
    ADD COLUMN browser_hash    bytea,
    ADD COLUMN verifier_nonce  bytea,
    ADD COLUMN verifier_sealed bytea;
