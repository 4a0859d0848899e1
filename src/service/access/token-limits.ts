/** Bounds of an API token's lifetime (5 minutes to 400 days): one source for config and API schema. */
export const TOKEN_TTL_MIN_SECONDS = 300;
export const TOKEN_TTL_MAX_SECONDS = 400 * 86_400;
