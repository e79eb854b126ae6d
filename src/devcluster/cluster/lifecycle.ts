/** Privilege checks and clean-up shared by `cluster create/start/delete`. */

/** undefined when this process may create network namespaces; else what the user must do. */
export function checkPrivileges(): string | undefined {
  if (process.getuid?.() !== 0) {
    return "local clusters need root (they create network namespaces, veth pairs and bridges); run as root, e.g. with sudo";
  }
  return undefined;
}

/**
 * Removes every network namespace, link, route and allocation cluster `name` of `home` left,
 * e.g. after its daemon crashed. Safe to call when nothing is left.
 */
export async function sweepCluster(home: string, name: string): Promise<void> {
  // Wired to the node's network sweep once src/devcluster/network lands.
  void home;
  void name;
}
