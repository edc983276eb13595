"""The platform's own container images: each image's source and the OCI builder that turns it
into an archive without a container engine.

    pause/           the pod sandbox (static Go)
    eureka-server/   Spring Cloud Netflix Eureka (Maven)
    build.py         builds both into <cache>/images/*.oci.tar, cached by their inputs
    oci.py           writes OCI image archives deterministically (standard library only)
    verify.py        inspects the archives and runs the Eureka image in a sandbox

`python3 -m tools.images` runs the build (and `--verify` the checks).
"""
