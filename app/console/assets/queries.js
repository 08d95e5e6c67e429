// What the console asks the API, and the data it starts from: the GraphQL documents, the
// built-in profile fields, sample profiles by department, the categories of a rule.
// What a rule reads besides the catalog's facts (docs/api.md, "The profile a rule sees").
export const BUILTIN = [
  ['person.age', 'int', { zh: '年龄（周岁，由出生日期算出）', en: 'age in whole years' }],
  ['person.birthDate', 'timestamp', { zh: '出生日期（身份证号）', en: 'birth date (ID number)' }],
  ['person.gender', 'string', { zh: '"M" / "F"', en: '"M" / "F"' }],
  ['person.hukou.city', 'string', { zh: '户籍（还有 code、province、district）', en: 'hukou (also code, province, district)' }],
  ['person.residence.city', 'string', { zh: '居住地（最新 residence 事件）', en: 'residence (latest residence event)' }],
  ['person.apps', 'list(string)', { zh: '已关联账号的应用', en: 'apps with linked accounts' }],
  ['event.type', 'string', { zh: '触发事件类型（回溯时没有）', en: 'the triggering event (absent in a backfill)' }],
  ['event.occurredAt', 'timestamp', { zh: '事件发生时间', en: 'when the event happened' }],
  ['now', 'timestamp', { zh: '评估时间', en: 'evaluation time' }],
];

export const SAMPLES = {
  '嘉兴市交通运输局': [
    { age: 67, hukou: { code: '330402' }, facts: { disabilityLevel: 2 } },
    { age: 45, hukou: { code: '330402' }, facts: { disabilityLevel: 1 } },
    { age: 70, hukou: { code: '310115' } },
  ],
  '浙江省卫生健康委员会': [
    { age: 31, hukou: { code: '330402' }, facts: { children: 1 }, event: { type: 'birth.registered', occurredAt: '2026-11-20T09:00:00+08:00' } },
    { age: 40, hukou: { code: '330106' }, facts: { children: 0 } },
  ],
};
export const DEFAULT_SAMPLES = [{ age: 65, hukou: { code: '330402' } }, { age: 30, hukou: { code: '310115' } }];

export const PREVIEW = `mutation Check($in: PushRuleInput!, $s: [JSON!]) {
  previewPushRule(input: $in, samples: $s) { valid problems { message line column } matches } }`;
export const ESTIMATE = `mutation Estimate($in: PushRuleInput!) {
  previewPushRule(input: $in) { valid audience { status count fewerThan epsilon budgetRemaining } } }`;
export const AUTHORING = `{ ruleAuthoring { client departments
  services { id name department category app { name } }
  facts { name type description sensitive readers } } }`;
export const COUNT = 'count fewerThan';
export const STATS = `stats { backfillScanned backfillDone people {
  matched { ${COUNT} } notified { ${COUNT} } delivered { ${COUNT} } deferred { ${COUNT} } failed { ${COUNT} } } }`;
export const RULE_FIELDS = `id name status version condition triggers backfill title body category service { id name department } ${STATS}`;
export const RULES = `{ pushRules(first: 20) { edges { node { ${RULE_FIELDS} } } } }`;
export const RULE = `query Rule($id: ID!) { pushRule(id: $id) { ${RULE_FIELDS} } }`;
export const CREATE = `mutation Create($in: PushRuleInput!) { createPushRule(input: $in) { ${RULE_FIELDS} } }`;
export const UPDATE = `mutation Update($id: ID!, $in: PushRuleInput!) { updatePushRule(id: $id, input: $in) { ${RULE_FIELDS} } }`;
export const CHANGE = (op) => `mutation Change($id: ID!) { ${op}(id: $id) { ${RULE_FIELDS} } }`;
