/**
 * Failures the operators report as such (not retried): a request that cannot succeed as written.
 * In its own module so that the feature operators, which the validator loads with the operator
 * registry, can recognise it without loading the feature store (and DuckDB) until a task runs.
 */
export class FeatureRequestError extends Error {}
