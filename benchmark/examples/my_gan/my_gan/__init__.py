"""An example gan-bench plugin (benchmark/examples/my_gan/README.md).

`my_gan.nets.build` is an architecture builder and `my_gan.losses.soft_hinge` a loss, each
under gan-bench's documented contract; `my_gan.plugin` registers them as `res_mlp` and
`soft_hinge` when the package is installed (entry point group `gan_bench.plugins`). A suite may
also name them directly as `my_gan.nets:build` and `my_gan.losses:soft_hinge`.
"""
