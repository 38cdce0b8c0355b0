/**
 * The one registry of diagnostic and error codes. Every code a user can see is listed here with a
 * one-line explanation; docs/errors.md is checked against this table by a test, so a new code
 * cannot ship undocumented.
 */
export const ERROR_CODES = {
  // Reading and parsing the file.
  FILE_READ: 'the file could not be read',
  FILE_TOO_LARGE: 'the file is larger than the 1 MiB limit',
  INVALID_ENCODING: 'the file is not UTF-8 text (binary data or control characters)',
  EMPTY_DOCUMENT: 'the file holds no YAML document',
  MULTIPLE_DOCUMENTS: 'the file holds more than one YAML document (`---`)',
  YAML_SYNTAX: 'the YAML could not be parsed',
  YAML_TAB_INDENT: 'tabs are not allowed as indentation in YAML',
  DUPLICATE_KEY: 'a mapping has the same key twice',
  ALIAS_LIMIT: 'the file uses more aliases than allowed, or their expansion is too large',
  UNDEFINED_ALIAS: 'an alias refers to an anchor that is not defined before it',
  DEPTH_LIMIT: 'the document nests deeper than 64 levels',
  CUSTOM_TAG: 'custom YAML tags (such as !!js/function) are not allowed',
  NOT_A_MAPPING: 'the document must be a mapping (key: value pairs)',

  // Structure (JSON Schema).
  UNKNOWN_KEY: 'a key that the format does not define (often a typo)',
  MISSING_KEY: 'a required key is missing',
  INVALID_TYPE: 'a value has the wrong type',
  INVALID_VALUE: 'a value is outside what is allowed (pattern, enum, range, length)',
  INVALID_ID: 'a DAG, task or feature id does not match ^[a-z][a-z0-9_]{0,63}$ (DAG ids may also use -)',
  INVALID_PARAMS: 'operator params do not satisfy the operator schema as a whole (e.g. need exactly one of two keys)',

  // Meaning.
  DUPLICATE_DAG_ID: 'two files in the folder declare the same DAG id',
  DUPLICATE_FEATURE_VIEW: 'two files in the folder declare the same feature view',
  UNKNOWN_OPERATOR: 'the operator is not one of the registered operators',
  UNKNOWN_DEPENDENCY: 'depends_on names a task that the DAG does not have',
  SELF_DEPENDENCY: 'a task depends on itself',
  DUPLICATE_DEPENDENCY: 'depends_on names the same task twice',
  DEPENDENCY_CYCLE: 'the tasks depend on each other in a cycle',
  INVALID_CRON: 'schedule is not a 5-field cron expression or a known preset',
  INVALID_TIMEZONE: 'timezone is not an IANA time zone name',
  INVALID_DATE: 'a date is not a valid date or ISO-8601 datetime',
  DATE_ORDER: 'start_date is not before end_date',
  MISSING_START_DATE: 'a scheduled DAG needs a start_date',
  INVALID_DURATION: 'a duration is not of the form 500ms, 30s, 5m, 2h, 1d (or a sum such as 1h30m)',
  INVALID_PARAM_DEFINITION: 'a run parameter definition is not a valid JSON-Schema-like definition',
  INVALID_PARAM_DEFAULT: 'a run parameter default does not satisfy its own definition',
  UNSUPPORTED_PATTERN: 'a run parameter `pattern` uses backreferences or lookaround, which the linear-time (RE2) engine does not run',
  UNKNOWN_POOL: 'a task uses a pool that cairn.yaml does not define',
  UNKNOWN_QUEUE: 'a task uses a queue that cairn.yaml workers.queues does not list',
  UNKNOWN_CLUSTER: 'an operator names a cluster that cairn.yaml does not define',
  UNKNOWN_MODEL_SERVER: 'serve.rollout names a model server that cairn.yaml does not declare (default or a name under model_servers)',
  TEMPLATE_SYNTAX: 'a {{ ... }} template does not parse',
  TEMPLATE_UNKNOWN_VARIABLE: 'a template uses a variable that does not exist',
  TEMPLATE_UNKNOWN_PARAM: 'a template uses params.X but the DAG does not declare X',
  TEMPLATE_UNKNOWN_TASK: 'a template uses tasks.T but the DAG has no task T',
  TEMPLATE_NOT_UPSTREAM: 'a template uses the outputs of a task that is not upstream of the task using it',
  TEMPLATE_BAD_REFERENCE: 'a template reference is incomplete, e.g. tasks.T without .outputs.KEY',
  TEMPLATE_NOT_ALLOWED: 'templates are only rendered in params, env and when; elsewhere they would stay literal',
  TEMPLATE_IN_SHELL_COMMAND: 'a template in the code argument of `sh -c` (bash, dash, ...) would splice a value into shell text; pass it through env',
  INVALID_WORKDIR: "a shell task's workdir is absolute or leaves the attempt's folder through ..; it must be a relative path inside it",

  // CLI.
  USAGE: 'the command line is not valid',
  PATH_NOT_FOUND: 'a path given on the command line does not exist',
} as const

export type ErrorCode = keyof typeof ERROR_CODES

export function isErrorCode(value: string): value is ErrorCode {
  return Object.hasOwn(ERROR_CODES, value)
}
