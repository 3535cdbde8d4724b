// pnpm hooks for this workspace.
module.exports = {
  hooks: {
    /**
     * The package.json that `pnpm pack` and `pnpm publish` put in a tarball: what an app
     * installing the package needs, without the workspace's build scripts and dev tools.
     */
    beforePacking(pkg) {
      delete pkg.scripts
      delete pkg.devDependencies
      return pkg
    },
  },
}
