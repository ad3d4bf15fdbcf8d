// A strategy's parameter set schema (GET /api/strategies) turned into form fields, and the
// checks the page makes before sending (bounds and types; rules between fields are the server's).

const GROUP_TITLES = { strategy: "Strategy", risk: "Risk and exits" };

/** The form's fields of one schema, in its order: name, label, kind, unit, help, bounds, group. */
export function fieldsOf(schema) {
  return Object.entries(schema?.properties ?? {}).map(([name, prop]) => {
    const types = prop.anyOf ? prop.anyOf.map((p) => p.type) : [prop.type];
    const kind = prop.enum ? "choice" : prop.type === "boolean" ? "bool" : prop.type === "integer" ? "integer" : types.includes("string") ? "decimal" : "number";
    const bound = (key) => prop[key] ?? prop.anyOf?.find((p) => p[key] !== undefined)?.[key];
    return {
      name,
      label: prop.title ?? name,
      kind,
      unit: prop.unit ?? "",
      help: prop.description ?? "",
      liveSafe: prop.live_safe !== false,
      group: prop.group ?? "strategy",
      options: prop.enum ?? [],
      min: bound("minimum"),
      max: bound("maximum"),
      exclusiveMin: bound("exclusiveMinimum"),
      exclusiveMax: bound("exclusiveMaximum"),
    };
  });
}

/** Fields grouped for fieldsets: [[title, fields]], the strategy's own first. */
export function groupsOf(fields, strategyName) {
  const groups = [];
  for (const group of ["strategy", "risk"]) {
    const members = fields.filter((f) => f.group === group);
    if (members.length) groups.push([group === "strategy" ? `${GROUP_TITLES.strategy}: ${strategyName}` : GROUP_TITLES[group], members]);
  }
  return groups;
}

function boundsText(field) {
  const low = field.exclusiveMin ?? field.min;
  const high = field.exclusiveMax ?? field.max;
  if (low !== undefined && high !== undefined) {
    if (field.exclusiveMin !== undefined && field.max !== undefined && field.exclusiveMax === undefined) return `Must be above ${low} and at most ${high}.`;
    return field.exclusiveMin !== undefined || field.exclusiveMax !== undefined ? `Must be between ${low} and ${high}.` : `Must be from ${low} to ${high}.`;
  }
  if (low !== undefined) return field.exclusiveMin !== undefined ? `Must be above ${low}.` : `Must be at least ${low}.`;
  return field.exclusiveMax !== undefined ? `Must be below ${high}.` : `Must be at most ${high}.`;
}

/** A field's problem on its own, or "" when fine. */
export function checkValue(field, text) {
  if (!field || field.kind === "bool") return "";
  const value = String(text).trim();
  if (field.kind === "choice") return field.options.includes(value) ? "" : `Choose ${field.options.join(" or ")}.`;
  if (value === "") return "Required.";
  if (field.kind === "integer" && !/^-?\d+$/.test(value)) return field.unit ? `Enter a whole number of ${field.unit}.` : "Enter a whole number.";
  if (field.kind !== "integer" && !/^-?\d*\.?\d+$/.test(value)) return "Enter a number such as 0.02.";
  const number = Number(value);
  const fails =
    (field.min !== undefined && number < field.min) ||
    (field.max !== undefined && number > field.max) ||
    (field.exclusiveMin !== undefined && number <= field.exclusiveMin) ||
    (field.exclusiveMax !== undefined && number >= field.exclusiveMax);
  return fails ? boundsText(field) : "";
}

/** What is sent for a field's text: decimals as text (exact), other numbers as numbers. */
export function valueOf(field, text) {
  return field.kind === "decimal" || field.kind === "choice" ? text : Number(text);
}
