import { DEFAULT_UPGRADE_OPTIONS, resolveOptions, type UpgradeOptions } from './upgrade-options';

describe('resolveOptions', () => {
  it("fills what the request leaves out from the cluster's defaults, and what those lack from the built-in ones", () => {
    const saved = { ...DEFAULT_UPGRADE_OPTIONS, maxParallel: 2 } as Partial<UpgradeOptions>;
    delete saved.stopServices; // saved before the option existed
    expect(resolveOptions(saved, { canary: 1 })).toEqual({ ...DEFAULT_UPGRADE_OPTIONS, maxParallel: 2, canary: 1 });
  });

  it('treats a null left in saved defaults by an older version as absent, so plans never see it', () => {
    const saved = {
      ...DEFAULT_UPGRADE_OPTIONS,
      maxParallel: null,
      waitForIdle: null,
    } as unknown as Partial<UpgradeOptions>;
    expect(resolveOptions(saved)).toEqual(DEFAULT_UPGRADE_OPTIONS);
    expect(
      resolveOptions(DEFAULT_UPGRADE_OPTIONS, { failureThreshold: null } as unknown as Partial<UpgradeOptions>)
        .failureThreshold,
    ).toBe(DEFAULT_UPGRADE_OPTIONS.failureThreshold);
  });
});
