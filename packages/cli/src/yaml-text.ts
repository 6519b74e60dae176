/** YAML text with lists of scalars on one line (`target_modules: [q, k, v, o]`), for files and terminals. */
import YAML from 'yaml';

export function toYaml(value: unknown): string {
  const doc = new YAML.Document(value);
  YAML.visit(doc, {
    Seq(_, node) {
      if (node.items.every((i) => YAML.isScalar(i))) node.flow = true;
    },
  });
  return doc.toString({ lineWidth: 100, flowCollectionPadding: false });
}
