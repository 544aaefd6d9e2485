"""The build stage: definition + variant -> sparse raw disk image, manifest and build log.

    pipeline.build_variant  orchestrates, in order:
      cache.RootCache        bootstrapped root tarballs keyed on what determines them
      steps.EC2_STEPS        small, named, ordered changes to the image root
      layout.plan_layout     pure disk layout planning (sizes, offsets, UUIDs, sfdisk script)
      disk.assemble          partition table, filesystems, GRUB, written without mounts or loop devices
      manifest.make_manifest the record handed to the boot, publish and release stages
"""
